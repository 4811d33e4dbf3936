//! `opsctl graph NAME`: the step graph as Mermaid or Graphviz dot.

use crate::library::Checked;

fn label(checked: &Checked, i: usize) -> (String, bool) {
    let step = &checked.runbook.steps[i];
    let action = step.action.action;
    let mutating = action.mutates(&step.action.args.as_written());
    (format!("{}\\n{}", step.id, action.spec().name), mutating)
}

pub fn mermaid(checked: &Checked) -> String {
    let mut out = String::from("flowchart TD\n");
    let id = |i: usize| format!("s{i}");
    for i in 0..checked.runbook.steps.len() {
        let (text, mutating) = label(checked, i);
        let text = text.replace("\\n", "<br/>").replace('"', "'");
        if mutating {
            out.push_str(&format!("  {}{{{{\"{text}<br/>mutates\"}}}}\n", id(i)));
        } else {
            out.push_str(&format!("  {}[\"{text}\"]\n", id(i)));
        }
    }
    for (i, needs) in checked.graph.needs.iter().enumerate() {
        let has_when = checked.runbook.steps[i].when.is_some();
        for &j in needs {
            if has_when {
                out.push_str(&format!("  {} -. when .-> {}\n", id(j), id(i)));
            } else {
                out.push_str(&format!("  {} --> {}\n", id(j), id(i)));
            }
        }
    }
    out
}

pub fn dot(checked: &Checked) -> String {
    let mut out = format!(
        "digraph \"{}\" {{\n  rankdir=TB;\n  node [shape=box, fontname=\"Helvetica\"];\n",
        checked.runbook.name
    );
    for i in 0..checked.runbook.steps.len() {
        let (text, mutating) = label(checked, i);
        let text = text.replace('"', "\\\"");
        let style = if mutating {
            ", style=filled, fillcolor=\"#fde2e2\", shape=hexagon"
        } else {
            ""
        };
        out.push_str(&format!(
            "  \"{}\" [label=\"{text}\"{style}];\n",
            checked.runbook.steps[i].id
        ));
    }
    for (i, needs) in checked.graph.needs.iter().enumerate() {
        let has_when = checked.runbook.steps[i].when.is_some();
        for &j in needs {
            let attrs = if has_when {
                " [style=dashed, label=\"when\"]"
            } else {
                ""
            };
            out.push_str(&format!(
                "  \"{}\" -> \"{}\"{attrs};\n",
                checked.runbook.steps[j].id, checked.runbook.steps[i].id
            ));
        }
    }
    out.push_str("}\n");
    out
}
