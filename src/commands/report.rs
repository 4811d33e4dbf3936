//! `opsctl report RECORD`: a finished (or crashed) run re-rendered from its record by the
//! same reporters that drew it live.

use std::path::Path;

use crate::exec::Reporter;
use crate::exit_code;
use crate::invocation::{Global, ReportFormat};
use crate::report::{self, HumanReporter, JsonReporter, human::SharedBuf};

pub fn report(g: &Global, path: &Path, format: ReportFormat) -> i32 {
    let record = match report::record::read(path) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("opsctl: {e}");
            return exit_code::INVALID;
        }
    };
    if record.torn_tail {
        eprintln!(
            "opsctl: note: the last line of {} was cut short (opsctl was killed while writing it); it is left out",
            path.display()
        );
    }
    let text = match format {
        ReportFormat::Markdown => report::postmortem::render(&record.events),
        ReportFormat::Json | ReportFormat::Human => {
            let buf = SharedBuf::default();
            let mut reporter: Box<dyn Reporter> = match format {
                ReportFormat::Json => Box::new(JsonReporter::new(Box::new(buf.clone()))),
                _ => {
                    let mut h = HumanReporter::new(
                        false,
                        g.color.enabled_for_stdout(),
                        Box::new(buf.clone()),
                    );
                    h.set_record(Some(path.display().to_string()));
                    Box::new(h)
                }
            };
            for e in &record.events {
                reporter.event(e);
            }
            reporter.finish();
            let bytes = buf.0.lock().map(|b| b.clone()).unwrap_or_default();
            String::from_utf8_lossy(&bytes).into_owned()
        }
    };
    super::print_stdout(&text)
}
