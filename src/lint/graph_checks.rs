//! Graph rules: duplicate step ids (R002), unknown needs (R003), cycles (R004).

use std::collections::HashMap;

use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::graph::StepGraph;
use crate::model::Runbook;
use crate::rules::Rule;
use crate::suggest;

pub fn check(runbook: &Runbook, broken: &[String], diags: &mut Diagnostics) -> StepGraph {
    let file = &runbook.file;
    let mut first: HashMap<&str, usize> = HashMap::new();
    for (i, step) in runbook.steps.iter().enumerate() {
        if let Some(&j) = first.get(step.id.as_str()) {
            diags.push(
                Diagnostic::error(
                    Rule::DuplicateStepId,
                    format!("duplicate step id `{}`", step.id),
                )
                .at(file, step.id_span, "used again here")
                .also(file, runbook.steps[j].id_span, "first used here")
                .help("step ids must be unique within a runbook"),
            );
        } else {
            first.insert(&step.id, i);
        }
    }
    let (graph, unknown) = StepGraph::build(runbook);
    for u in unknown {
        if broken.contains(&u.name) {
            continue;
        }
        let step = &runbook.steps[u.step];
        let span = step.needs[u.need].1;
        let ids = runbook.steps.iter().map(|s| s.id.as_str());
        diags.push(
            Diagnostic::error(
                Rule::UnknownNeed,
                format!(
                    "step `{}` needs `{}`, which does not exist",
                    step.id, u.name
                ),
            )
            .at(file, span, "unknown step")
            .help(suggest::help(&u.name, ids).unwrap_or_else(|| {
                format!(
                    "steps are: {}",
                    runbook
                        .steps
                        .iter()
                        .map(|s| s.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })),
        );
    }
    for cycle in graph.cycles() {
        let text = graph.describe_cycle(&cycle);
        // Point at the `needs` entry of each step that continues the loop.
        let at = |k: usize| {
            let from = &runbook.steps[cycle[k]];
            let to = &graph.ids[cycle[(k + 1) % cycle.len()]];
            from.needs
                .iter()
                .find(|(n, _)| n == to)
                .map_or(from.id_span, |(_, s)| *s)
        };
        let mut d = Diagnostic::error(Rule::Cycle, format!("steps form a cycle: {text}")).at(
            file,
            at(0),
            format!(
                "`{}` needs `{}`",
                graph.ids[cycle[0]],
                graph.ids[cycle[1 % cycle.len()]]
            ),
        );
        for k in 1..cycle.len() {
            d = d.also(
                file,
                at(k),
                format!(
                    "`{}` needs `{}`",
                    graph.ids[cycle[k]],
                    graph.ids[cycle[(k + 1) % cycle.len()]]
                ),
            );
        }
        diags.push(d.help("remove one of these `needs` so the steps can be ordered"));
    }
    graph
}
