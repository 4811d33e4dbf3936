//! The step graph: `needs` resolved to indices, cycles found (with the whole loop),
//! waves (what can run together) and ancestry (what a step may read).

use std::collections::HashMap;

use crate::model::Runbook;

/// Steps as indices into `Runbook::steps`, with edges both ways.
#[derive(Debug, Clone)]
pub struct StepGraph {
    pub ids: Vec<String>,
    pub index: HashMap<String, usize>,
    /// `needs[i]`: steps that must end before step i (deduplicated, resolved only).
    pub needs: Vec<Vec<usize>>,
    /// `dependents[i]`: steps that need step i.
    pub dependents: Vec<Vec<usize>>,
}

/// A `needs` entry that names no step.
#[derive(Debug, Clone)]
pub struct UnknownNeed {
    pub step: usize,
    pub need: usize,
    pub name: String,
}

impl StepGraph {
    /// Builds the graph; unknown needs are returned separately (and left out).
    pub fn build(runbook: &Runbook) -> (StepGraph, Vec<UnknownNeed>) {
        let ids: Vec<String> = runbook.steps.iter().map(|s| s.id.clone()).collect();
        let mut index = HashMap::with_capacity(ids.len());
        for (i, id) in ids.iter().enumerate() {
            index.entry(id.clone()).or_insert(i);
        }
        let mut needs = vec![Vec::new(); ids.len()];
        let mut dependents = vec![Vec::new(); ids.len()];
        let mut unknown = Vec::new();
        for (i, step) in runbook.steps.iter().enumerate() {
            for (k, (need, _)) in step.needs.iter().enumerate() {
                match index.get(need) {
                    Some(&j) if !needs[i].contains(&j) => {
                        needs[i].push(j);
                        dependents[j].push(i);
                    }
                    Some(_) => {}
                    None => unknown.push(UnknownNeed {
                        step: i,
                        need: k,
                        name: need.clone(),
                    }),
                }
            }
        }
        (
            StepGraph {
                ids,
                index,
                needs,
                dependents,
            },
            unknown,
        )
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Every elementary loop found by a depth-first search, each as the list of step
    /// indices in order (`a → b → c`, closing back to `a`). One loop per strongly
    /// connected group is enough to fix it, so that is what is reported.
    pub fn cycles(&self) -> Vec<Vec<usize>> {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            New,
            Active,
            Done,
        }
        let n = self.len();
        let mut mark = vec![Mark::New; n];
        let mut cycles = Vec::new();
        let mut in_cycle = vec![false; n];
        for start in 0..n {
            if mark[start] != Mark::New {
                continue;
            }
            // Iterative DFS along `needs` edges; `path` is the active chain.
            let mut path: Vec<usize> = vec![start];
            let mut next_edge: Vec<usize> = vec![0];
            mark[start] = Mark::Active;
            while let Some(&node) = path.last() {
                let edge = next_edge.last().copied().unwrap_or(0);
                if let Some(&target) = self.needs[node].get(edge) {
                    if let Some(e) = next_edge.last_mut() {
                        *e += 1;
                    }
                    match mark[target] {
                        Mark::New => {
                            mark[target] = Mark::Active;
                            path.push(target);
                            next_edge.push(0);
                        }
                        Mark::Active => {
                            let pos = path.iter().position(|&p| p == target).unwrap_or(0);
                            let lp: Vec<usize> = path[pos..].to_vec();
                            if !lp.iter().any(|&s| in_cycle[s]) {
                                for &s in &lp {
                                    in_cycle[s] = true;
                                }
                                cycles.push(lp);
                            }
                        }
                        Mark::Done => {}
                    }
                } else {
                    mark[node] = Mark::Done;
                    path.pop();
                    next_edge.pop();
                }
            }
        }
        cycles
    }

    /// Topological order (Kahn); `None` if there is a cycle.
    pub fn topo_order(&self) -> Option<Vec<usize>> {
        let n = self.len();
        let mut indeg: Vec<usize> = self.needs.iter().map(Vec::len).collect();
        let mut ready: Vec<usize> = (0..n).filter(|&i| indeg[i] == 0).collect();
        ready.reverse();
        let mut order = Vec::with_capacity(n);
        while let Some(i) = ready.pop() {
            order.push(i);
            for &d in self.dependents[i].iter().rev() {
                indeg[d] -= 1;
                if indeg[d] == 0 {
                    ready.push(d);
                }
            }
        }
        (order.len() == n).then_some(order)
    }

    /// Waves: wave k holds the steps whose longest chain of needs has length k; steps of
    /// one wave have no path between them and may run together.
    pub fn waves(&self) -> Vec<Vec<usize>> {
        let Some(order) = self.topo_order() else {
            return Vec::new();
        };
        let mut level = vec![0usize; self.len()];
        for &i in &order {
            level[i] = self.needs[i]
                .iter()
                .map(|&j| level[j] + 1)
                .max()
                .unwrap_or(0);
        }
        let depth = level.iter().copied().max().map_or(0, |m| m + 1);
        let mut waves = vec![Vec::new(); depth];
        for i in 0..self.len() {
            waves[level[i]].push(i);
        }
        waves
    }

    /// Whether `ancestor` is reachable from `step` through `needs` (DFS; lint-time only).
    pub fn is_ancestor(&self, ancestor: usize, step: usize) -> bool {
        let mut seen = vec![false; self.len()];
        let mut stack: Vec<usize> = self.needs[step].clone();
        while let Some(i) = stack.pop() {
            if i == ancestor {
                return true;
            }
            if !std::mem::replace(&mut seen[i], true) {
                stack.extend(self.needs[i].iter().copied());
            }
        }
        false
    }

    /// `selected` plus every ancestor of a selected step (for `--only` and `--tags`).
    pub fn with_ancestors(&self, selected: &[usize]) -> Vec<bool> {
        let mut keep = vec![false; self.len()];
        let mut stack: Vec<usize> = selected.to_vec();
        while let Some(i) = stack.pop() {
            if !std::mem::replace(&mut keep[i], true) {
                stack.extend(self.needs[i].iter().copied());
            }
        }
        keep
    }

    /// Renders a loop as `a → b → c → a`, in dependency direction (a needs b ...).
    pub fn describe_cycle(&self, cycle: &[usize]) -> String {
        let mut names: Vec<&str> = cycle.iter().map(|&i| self.ids[i].as_str()).collect();
        if let Some(first) = names.first().copied() {
            names.push(first);
        }
        names.join(" → ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(edges: &[(usize, usize)], n: usize) -> StepGraph {
        let mut needs = vec![Vec::new(); n];
        let mut dependents = vec![Vec::new(); n];
        for &(a, b) in edges {
            needs[a].push(b);
            dependents[b].push(a);
        }
        let ids: Vec<String> = (0..n).map(|i| format!("s{i}")).collect();
        let index = ids
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, s)| (s, i))
            .collect();
        StepGraph {
            ids,
            index,
            needs,
            dependents,
        }
    }

    #[test]
    fn finds_whole_loop() {
        // s0 needs s1, s1 needs s2, s2 needs s0; s3 needs s0.
        let g = graph(&[(0, 1), (1, 2), (2, 0), (3, 0)], 4);
        let cycles = g.cycles();
        assert_eq!(cycles.len(), 1);
        assert_eq!(g.describe_cycle(&cycles[0]), "s0 → s1 → s2 → s0");
        assert!(g.topo_order().is_none());
    }

    #[test]
    fn self_loop_is_a_cycle() {
        let g = graph(&[(0, 0)], 1);
        assert_eq!(g.describe_cycle(&g.cycles()[0]), "s0 → s0");
    }

    #[test]
    fn waves_and_ancestors() {
        // s2 needs s0 and s1; s3 needs s2; s4 alone.
        let g = graph(&[(2, 0), (2, 1), (3, 2)], 5);
        assert_eq!(g.waves(), vec![vec![0, 1, 4], vec![2], vec![3]]);
        assert!(g.is_ancestor(0, 3));
        assert!(!g.is_ancestor(4, 3));
        assert!(!g.is_ancestor(3, 0));
        assert_eq!(g.with_ancestors(&[2]), vec![true, true, true, false, false]);
    }
}
