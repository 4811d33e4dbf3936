//! `opsctl show NAME`: the runbook as readable markdown — description, params with
//! examples, steps with their docs, and the waves.

use crate::library::Checked;
use crate::model::duration::format_duration;

pub fn render(checked: &Checked, env: &crate::config::EnvConfig) -> String {
    let rb = &checked.runbook;
    let mut out = format!("# {} — {}\n\n", rb.name, rb.title);
    let mut facts = Vec::new();
    if let Some(s) = rb.severity {
        facts.push(format!("**Severity:** {}", s.as_str()));
    }
    if !rb.tags.is_empty() {
        facts.push(format!("**Tags:** {}", rb.tags.join(", ")));
    }
    facts.push(format!("**File:** `{}`", rb.file.display_path()));
    out.push_str(&facts.join(" · "));
    out.push_str("\n\n");
    if let Some(d) = &rb.description {
        out.push_str(d.trim_end());
        out.push_str("\n\n");
    }
    if !rb.params.is_empty() {
        out.push_str("## Params\n\n| Param | Required | Default | Example | Pattern | Description |\n|---|---|---|---|---|---|\n");
        for p in &rb.params {
            let cell = |v: &Option<serde_json::Value>| {
                v.as_ref()
                    .map_or(String::new(), |v| format!("`{}`", crate::expr::text_of(v)))
            };
            out.push_str(&format!(
                "| `{}` | {} | {} | {} | {} | {} |\n",
                p.name,
                if p.required { "yes" } else { "no" },
                cell(&p.default),
                cell(&p.example),
                [
                    p.ty.map(|t| format!("`{}`", t.as_str())),
                    p.choices.as_ref().map(|c| format!(
                        "one of {}",
                        c.iter()
                            .map(|v| format!("`{}`", crate::expr::text_of(v)))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
                    p.pattern
                        .as_ref()
                        .map(|r| format!("`{}`", r.as_str().replace('|', "\\|"))),
                ]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" "),
                p.description.as_deref().unwrap_or("").replace('\n', " ")
            ));
        }
        out.push('\n');
    }
    out.push_str("## Steps\n\n");
    for (n, step) in rb.steps.iter().enumerate() {
        let action = step.action.action;
        out.push_str(&format!(
            "### {}. {} (`{}`)\n\n",
            n + 1,
            step.title(),
            step.id
        ));
        if let Some(doc) = &step.doc {
            out.push_str(doc.trim_end());
            out.push_str("\n\n");
        }
        let args = step.action.args.as_written();
        out.push_str(&format!(
            "- **Action:** `{}` — {}\n",
            action.spec().name,
            action.describe(&args, env)
        ));
        if action.asks_person() {
            let text = args
                .get("instructions")
                .map(crate::expr::text_of)
                .unwrap_or_default();
            out.push_str("- **Instructions:**\n\n");
            for line in text.trim_end().lines() {
                out.push_str(&format!("  > {line}\n"));
            }
            out.push('\n');
        } else {
            let pretty = serde_json::to_string(&args).unwrap_or_default();
            out.push_str(&format!(
                "- **Arguments:** `{}`\n",
                pretty.replace('`', "'")
            ));
        }
        if !step.needs.is_empty() {
            let needs: Vec<String> = step.needs.iter().map(|(n, _)| format!("`{n}`")).collect();
            out.push_str(&format!("- **Needs:** {}\n", needs.join(", ")));
        }
        if let Some(w) = &step.when {
            out.push_str(&format!("- **When:** `{}`\n", w.source().trim()));
        }
        if action.mutates(&args) {
            out.push_str("- **Mutates:** asks for confirmation before running\n");
        } else if action.asks_person() {
            out.push_str("- **Manual:** waits for a person to confirm\n");
        }
        if !step.capture.is_empty() {
            let items: Vec<String> = step
                .capture
                .iter()
                .map(|c| format!("`{}` = `{}`", c.name, c.expr.source().trim()))
                .collect();
            out.push_str(&format!("- **Captures:** {}\n", items.join(", ")));
        }
        if let Some(list) = &step.expect {
            let items: Vec<String> = list
                .iter()
                .map(|e| format!("`{}`", e.source().trim()))
                .collect();
            out.push_str(&format!("- **Expect:** {}\n", items.join(", ")));
        }
        for (label, list) in [("Warn if", &step.warn_if), ("Fail if", &step.fail_if)] {
            if !list.is_empty() {
                let items: Vec<String> = list
                    .iter()
                    .map(|e| format!("`{}`", e.source().trim()))
                    .collect();
                out.push_str(&format!("- **{label}:** {}\n", items.join(", ")));
            }
        }
        if step.timeout != crate::model::DEFAULT_TIMEOUT {
            out.push_str(&format!(
                "- **Timeout:** {}\n",
                format_duration(step.timeout)
            ));
        }
        if let Some(r) = &step.retry {
            out.push_str(&format!(
                "- **Retry:** {} attempts, {} apart{}\n",
                r.attempts,
                format_duration(r.delay),
                r.until
                    .as_ref()
                    .map(|u| format!(", until `{}`", u.source().trim()))
                    .unwrap_or_default()
            ));
        }
        out.push('\n');
    }
    out.push_str("## Waves\n\nSteps of one wave run concurrently.\n\n");
    for (w, wave) in checked.graph.waves().iter().enumerate() {
        let ids: Vec<String> = wave
            .iter()
            .map(|&i| format!("`{}`", rb.steps[i].id))
            .collect();
        out.push_str(&format!("{}. {}\n", w + 1, ids.join(", ")));
    }
    out
}
