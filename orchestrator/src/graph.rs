//! The service dependency graph every project command walks.
//!
//! Services are nodes; an edge `a -> b` says "a depends on b" and carries the `depends_on`
//! condition, `restart` and `required` flags. `network_mode: service:b` adds an implicit edge
//! (b must run first, and a must restart with it). The graph offers:
//! - [`ServiceGraph::start_order`]: waves of services; every service of a wave only depends on
//!   services of earlier waves, so a wave can start in parallel;
//! - [`ServiceGraph::stop_order`]: the waves reversed (dependents stop before their dependencies);
//! - [`ServiceGraph::selection`]: the set a command needs, with or without dependencies
//!   (`--no-deps`), and orders restricted to such a set;
//! - [`ServiceGraph::dependencies`], [`ServiceGraph::dependents`] (for `restart: true`) and the
//!   transitive closures;
//! - DOT and Mermaid renderings with the conditions on the edges.
//!
//! Cycles are reported deterministically with the whole cycle: starting from the smallest service
//! name of the cycle, following dependencies in name order (`dependency cycle: a -> b -> c -> a`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;
use petgraph::Direction;

use crate::compose::error::did_you_mean;
use crate::compose::{Condition, NetworkMode, Project};

/// Why a graph could not be built or queried.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    /// The dependencies form a cycle; the path starts and ends with the same service.
    #[error("dependency cycle: {}", path.join(" -> "))]
    Cycle {
        /// The cycle, first service repeated at the end.
        path: Vec<String>,
    },
    /// A required dependency names a service the project does not have.
    #[error("service `{service}` depends on unknown service `{dependency}`")]
    UnknownDependency {
        /// The dependent service.
        service: String,
        /// The missing dependency.
        dependency: String,
    },
    /// A query named a service the project does not have.
    #[error("no such service: `{name}`{hint}")]
    UnknownService {
        /// The name asked for.
        name: String,
        /// A " (did you mean ...)" suggestion or empty.
        hint: String,
    },
}

/// What an edge carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edge {
    /// When the dependency counts as ready.
    pub condition: Condition,
    /// Restart the dependent when the dependency restarts.
    pub restart: bool,
    /// A missing dependency is an error.
    pub required: bool,
    /// From `network_mode: service:x` rather than `depends_on`.
    pub implicit: bool,
}

/// One side of an edge, as returned by the queries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The service at the other end.
    pub service: String,
    /// The edge.
    pub edge: Edge,
}

/// The dependency graph of a project's enabled services.
#[derive(Debug, Clone)]
pub struct ServiceGraph {
    graph: DiGraph<String, Edge>,
    nodes: BTreeMap<String, NodeIndex>,
}

impl ServiceGraph {
    /// Builds the graph; fails on an unknown required dependency or a cycle.
    pub fn new(project: &Project) -> Result<Self, GraphError> {
        let g = Self::build(project, true)?;
        if let Some(path) = g.find_cycles().into_iter().next() {
            return Err(GraphError::Cycle { path });
        }
        Ok(g)
    }

    fn build(project: &Project, strict: bool) -> Result<Self, GraphError> {
        let mut graph = DiGraph::new();
        let mut nodes = BTreeMap::new();
        for name in project.services.keys() {
            nodes.insert(name.clone(), graph.add_node(name.clone()));
        }
        for (name, svc) in &project.services {
            let from = nodes[name];
            let mut edges: Vec<(&String, Edge)> = svc
                .depends_on
                .iter()
                .map(|(dep, d)| {
                    let edge = Edge {
                        condition: d.condition,
                        restart: d.restart,
                        required: d.required,
                        implicit: false,
                    };
                    (dep, edge)
                })
                .collect();
            if let Some(NetworkMode::Service(other)) = &svc.network_mode {
                if !svc.depends_on.contains_key(other) {
                    let edge = Edge {
                        condition: Condition::ServiceStarted,
                        restart: true,
                        required: true,
                        implicit: true,
                    };
                    edges.push((other, edge));
                }
            }
            for (dep, edge) in edges {
                match nodes.get(dep) {
                    Some(to) => {
                        graph.add_edge(from, *to, edge);
                    }
                    None if strict && edge.required => {
                        return Err(GraphError::UnknownDependency {
                            service: name.clone(),
                            dependency: dep.clone(),
                        })
                    }
                    None => {}
                }
            }
        }
        Ok(Self { graph, nodes })
    }

    fn node(&self, name: &str) -> Result<NodeIndex, GraphError> {
        self.nodes
            .get(name)
            .copied()
            .ok_or_else(|| GraphError::UnknownService {
                name: name.to_string(),
                hint: did_you_mean(name, self.nodes.keys().map(String::as_str)),
            })
    }

    fn name(&self, n: NodeIndex) -> &str {
        &self.graph[n]
    }

    /// Sorted direct neighbours of `n` in `dir` (Outgoing: dependencies).
    fn neighbours(&self, n: NodeIndex, dir: Direction) -> Vec<NodeIndex> {
        let mut v: Vec<NodeIndex> = self.graph.neighbors_directed(n, dir).collect();
        v.sort_by(|a, b| self.name(*a).cmp(self.name(*b)));
        v.dedup();
        v
    }

    /// Every cycle (one per strongly connected component), deterministic.
    fn find_cycles(&self) -> Vec<Vec<String>> {
        let mut cycles = Vec::new();
        for scc in tarjan_scc(&self.graph) {
            let self_loop = scc.len() == 1 && self.graph.contains_edge(scc[0], scc[0]);
            if scc.len() < 2 && !self_loop {
                continue;
            }
            let members: BTreeSet<NodeIndex> = scc.iter().copied().collect();
            let Some(start) = scc
                .iter()
                .copied()
                .min_by(|a, b| self.name(*a).cmp(self.name(*b)))
            else {
                continue;
            };
            if let Some(path) = self.cycle_from(start, &members) {
                cycles.push(path);
            }
        }
        cycles.sort();
        cycles
    }

    /// The first cycle back to `start` found by a name-ordered depth-first search.
    fn cycle_from(&self, start: NodeIndex, members: &BTreeSet<NodeIndex>) -> Option<Vec<String>> {
        let mut path = vec![start];
        let mut visited = BTreeSet::from([start]);
        let mut stack = vec![self.neighbours(start, Direction::Outgoing).into_iter()];
        while let Some(iter) = stack.last_mut() {
            match iter.next() {
                Some(next) if next == start => {
                    let mut names: Vec<String> =
                        path.iter().map(|n| self.name(*n).to_string()).collect();
                    names.push(self.name(start).to_string());
                    return Some(names);
                }
                Some(next) if members.contains(&next) && visited.insert(next) => {
                    path.push(next);
                    stack.push(self.neighbours(next, Direction::Outgoing).into_iter());
                }
                Some(_) => {}
                None => {
                    stack.pop();
                    path.pop();
                }
            }
        }
        None
    }

    /// All services in start waves (each wave sorted by name).
    pub fn start_order(&self) -> Vec<Vec<String>> {
        self.waves(&self.nodes.keys().cloned().collect())
    }

    /// All services in stop waves: dependents before their dependencies.
    pub fn stop_order(&self) -> Vec<Vec<String>> {
        let mut w = self.start_order();
        w.reverse();
        w
    }

    /// Start waves of a subset (edges leaving the subset are ignored).
    pub fn start_order_of(&self, set: &BTreeSet<String>) -> Vec<Vec<String>> {
        self.waves(set)
    }

    /// Stop waves of a subset.
    pub fn stop_order_of(&self, set: &BTreeSet<String>) -> Vec<Vec<String>> {
        let mut w = self.waves(set);
        w.reverse();
        w
    }

    fn waves(&self, set: &BTreeSet<String>) -> Vec<Vec<String>> {
        let mut level: BTreeMap<&str, usize> = BTreeMap::new();
        let mut remaining: Vec<&str> = set
            .iter()
            .filter(|n| self.nodes.contains_key(*n))
            .map(String::as_str)
            .collect();
        // The graph is acyclic (checked in `new`), so each round places at least one service.
        while !remaining.is_empty() {
            let before = remaining.len();
            remaining.retain(|name| {
                let deps: Vec<NodeIndex> = self.neighbours(self.nodes[*name], Direction::Outgoing);
                let mut lvl = 0;
                for d in deps {
                    let dn = self.name(d);
                    if !set.contains(dn) {
                        continue;
                    }
                    match level.get(dn) {
                        Some(l) => lvl = lvl.max(l + 1),
                        None => return true,
                    }
                }
                level.insert(name, lvl);
                false
            });
            if remaining.len() == before {
                break;
            }
        }
        let mut out: Vec<Vec<String>> = Vec::new();
        for (name, lvl) in level {
            if out.len() <= lvl {
                out.resize(lvl + 1, Vec::new());
            }
            out[lvl].push(name.to_string());
        }
        out
    }

    /// Direct dependencies of a service, sorted by name.
    pub fn dependencies(&self, service: &str) -> Result<Vec<Link>, GraphError> {
        self.links(service, Direction::Outgoing)
    }

    /// Services that depend directly on `service`, sorted by name (for `restart: true`).
    pub fn dependents(&self, service: &str) -> Result<Vec<Link>, GraphError> {
        self.links(service, Direction::Incoming)
    }

    fn links(&self, service: &str, dir: Direction) -> Result<Vec<Link>, GraphError> {
        let n = self.node(service)?;
        let mut out: Vec<Link> = self
            .graph
            .edges_directed(n, dir)
            .map(|e| {
                let other = if dir == Direction::Outgoing {
                    e.target()
                } else {
                    e.source()
                };
                Link {
                    service: self.name(other).to_string(),
                    edge: *e.weight(),
                }
            })
            .collect();
        out.sort_by(|a, b| a.service.cmp(&b.service));
        Ok(out)
    }

    /// Every service `service` depends on, directly or not (itself excluded).
    pub fn transitive_deps(&self, service: &str) -> Result<BTreeSet<String>, GraphError> {
        self.closure(service, Direction::Outgoing)
    }

    /// Every service that depends on `service`, directly or not (itself excluded).
    pub fn transitive_dependents(&self, service: &str) -> Result<BTreeSet<String>, GraphError> {
        self.closure(service, Direction::Incoming)
    }

    fn closure(&self, service: &str, dir: Direction) -> Result<BTreeSet<String>, GraphError> {
        let start = self.node(service)?;
        let mut seen = BTreeSet::new();
        let mut todo = vec![start];
        while let Some(n) = todo.pop() {
            for m in self.graph.neighbors_directed(n, dir) {
                if m != start && seen.insert(self.name(m).to_string()) {
                    todo.push(m);
                }
            }
        }
        Ok(seen)
    }

    /// The services a command acts on: the named ones (all when empty), plus their transitive
    /// dependencies unless `no_deps`.
    pub fn selection(
        &self,
        services: &[String],
        no_deps: bool,
    ) -> Result<BTreeSet<String>, GraphError> {
        if services.is_empty() {
            return Ok(self.nodes.keys().cloned().collect());
        }
        let mut out = BTreeSet::new();
        for s in services {
            self.node(s)?;
            out.insert(s.clone());
            if !no_deps {
                out.extend(self.transitive_deps(s)?);
            }
        }
        Ok(out)
    }

    fn sorted_edges(&self) -> Vec<(&str, &str, Edge)> {
        let mut edges: Vec<(&str, &str, Edge)> = self
            .graph
            .edge_references()
            .map(|e| (self.name(e.source()), self.name(e.target()), *e.weight()))
            .collect();
        edges.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        edges
    }

    fn label(edge: &Edge) -> String {
        let mut label = edge.condition.as_str().to_string();
        if edge.implicit {
            label = "network_mode".into();
        }
        if edge.restart && !edge.implicit {
            label.push_str(", restart");
        }
        if !edge.required {
            label.push_str(", optional");
        }
        label
    }

    /// The graph in Graphviz DOT, edges from dependent to dependency labelled with the condition.
    pub fn to_dot(&self) -> String {
        let mut out = String::from("digraph services {\n  rankdir=LR;\n");
        for name in self.nodes.keys() {
            let _ = writeln!(out, "  {name:?};");
        }
        for (a, b, e) in self.sorted_edges() {
            let _ = writeln!(out, "  {a:?} -> {b:?} [label={:?}];", Self::label(&e));
        }
        out.push_str("}\n");
        out
    }

    /// The graph as a Mermaid flowchart.
    pub fn to_mermaid(&self) -> String {
        let id = |n: &str| -> String {
            n.chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect()
        };
        let mut out = String::from("flowchart LR\n");
        for name in self.nodes.keys() {
            let _ = writeln!(out, "  {}[\"{name}\"]", id(name));
        }
        for (a, b, e) in self.sorted_edges() {
            let _ = writeln!(out, "  {} -->|{}| {}", id(a), Self::label(&e), id(b));
        }
        out
    }
}

/// Every dependency cycle among the project's services, deterministic and sorted; unknown
/// dependencies are ignored (the validate phase reports them).
pub fn cycles(project: &Project) -> Vec<Vec<String>> {
    match ServiceGraph::build(project, false) {
        Ok(g) => g.find_cycles(),
        Err(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::{DependsOn, Service};

    fn project(deps: &[(&str, &[&str])]) -> Project {
        let mut p = Project::default();
        for (name, ds) in deps {
            let mut s = Service::default();
            for d in *ds {
                s.depends_on.insert(d.to_string(), DependsOn::default());
            }
            p.services.insert(name.to_string(), s);
        }
        p
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn waves_start_dependencies_first() {
        let p = project(&[
            ("web", &["api", "cache"]),
            ("api", &["db", "cache"]),
            ("db", &[]),
            ("cache", &[]),
            ("worker", &["db"]),
        ]);
        let g = ServiceGraph::new(&p).unwrap();
        assert_eq!(
            g.start_order(),
            vec![
                names(&["cache", "db"]),
                names(&["api", "worker"]),
                names(&["web"])
            ]
        );
        assert_eq!(g.stop_order()[0], names(&["web"]));
        assert_eq!(
            g.transitive_deps("web")
                .unwrap()
                .into_iter()
                .collect::<Vec<_>>(),
            names(&["api", "cache", "db"])
        );
        let dependents: Vec<String> = g
            .dependents("db")
            .unwrap()
            .into_iter()
            .map(|l| l.service)
            .collect();
        assert_eq!(dependents, names(&["api", "worker"]));
        assert_eq!(
            g.transitive_dependents("cache")
                .unwrap()
                .into_iter()
                .collect::<Vec<_>>(),
            names(&["api", "web"])
        );
    }

    #[test]
    fn selections_with_and_without_deps() {
        let p = project(&[("web", &["api"]), ("api", &["db"]), ("db", &[]), ("x", &[])]);
        let g = ServiceGraph::new(&p).unwrap();
        let with = g.selection(&names(&["web"]), false).unwrap();
        assert_eq!(
            with.iter().cloned().collect::<Vec<_>>(),
            names(&["api", "db", "web"])
        );
        assert_eq!(
            g.start_order_of(&with),
            vec![names(&["db"]), names(&["api"]), names(&["web"])]
        );
        let without = g.selection(&names(&["web"]), true).unwrap();
        assert_eq!(g.start_order_of(&without), vec![names(&["web"])]);
        assert_eq!(g.selection(&[], false).unwrap().len(), 4);
        let err = g.selection(&names(&["wbe"]), false).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no such service: `wbe` (did you mean `web`?)"
        );
    }

    #[test]
    fn cycles_are_reported_whole_and_deterministically() {
        let p = project(&[("c", &["a"]), ("a", &["b"]), ("b", &["c"]), ("d", &[])]);
        let err = ServiceGraph::new(&p).unwrap_err();
        assert_eq!(err.to_string(), "dependency cycle: a -> b -> c -> a");
        let p = project(&[("z", &["z"]), ("x", &["y"]), ("y", &["x", "z"])]);
        assert_eq!(
            cycles(&p),
            vec![names(&["x", "y", "x"]), names(&["z", "z"])]
        );
    }

    #[test]
    fn unknown_dependencies_and_implicit_edges() {
        let p = project(&[("web", &["nope"])]);
        assert_eq!(
            ServiceGraph::new(&p).unwrap_err().to_string(),
            "service `web` depends on unknown service `nope`"
        );
        let mut p = project(&[("vpn", &[]), ("app", &[])]);
        p.services.get_mut("app").unwrap().network_mode = Some(NetworkMode::Service("vpn".into()));
        let g = ServiceGraph::new(&p).unwrap();
        assert_eq!(g.start_order(), vec![names(&["vpn"]), names(&["app"])]);
        let deps = g.dependencies("app").unwrap();
        assert!(deps[0].edge.implicit && deps[0].edge.restart);
    }

    #[test]
    fn renderings_show_conditions() {
        let mut p = project(&[("web", &["db"]), ("db", &[])]);
        p.services
            .get_mut("web")
            .unwrap()
            .depends_on
            .get_mut("db")
            .unwrap()
            .condition = Condition::ServiceHealthy;
        let g = ServiceGraph::new(&p).unwrap();
        assert_eq!(
            g.to_dot(),
            "digraph services {\n  rankdir=LR;\n  \"db\";\n  \"web\";\n  \"web\" -> \"db\" [label=\"service_healthy\"];\n}\n"
        );
        assert_eq!(
            g.to_mermaid(),
            "flowchart LR\n  db[\"db\"]\n  web[\"web\"]\n  web -->|service_healthy| db\n"
        );
    }
}
