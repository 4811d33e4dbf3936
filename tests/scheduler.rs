//! The scheduler, in-process, with test actions registered beside the built-in ones: a
//! barrier every concurrent step must reach (so "concurrent" is proven, not timed), a
//! step that fails on demand, a gauge of steps in flight, a step that never ends.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use opsctl::actions::spec::{ActionSpec, ArgsSchema, OutputSpec};
use opsctl::actions::{ActionError, ActionImpl, Outputs, Registry};
use opsctl::config::{Config, EnvConfig};
use opsctl::exec::confirm::{ConfirmRequest, Confirmer, Decision, Interact, ManualRequest};
use opsctl::exec::runner::{self, Request, Settings};
use opsctl::exec::{Event, Mode, Reporter, RunOutcome, RunStatus, StepContext};
use opsctl::library::Library;
use tokio_util::sync::CancellationToken;

use crate::support::TempDir;

opsctl::action_args! {
    /// Arguments of the test actions.
    pub struct TestArgs {
        /// Fail instead of succeeding.
        fail: bool,
    }
}

/// What the test actions share: a barrier, the gauge, a signal that the hang started.
struct Probe {
    barrier: tokio::sync::Barrier,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    runs: AtomicUsize,
    hanging: tokio::sync::Notify,
}

struct Meet(&'static Probe);
struct Hang(&'static Probe);

static MEET_SPEC: ActionSpec = ActionSpec {
    name: "test.meet",
    summary: "Wait at the barrier, counting steps in flight.",
    args: <TestArgs as ArgsSchema>::ARGS,
    outputs: &[OutputSpec {
        name: "seen",
        doc: "Steps in flight when this one arrived.",
    }],
    exclusive: &[],
    mutating: "never",
    default_expect: "no error",
};

static HANG_SPEC: ActionSpec = ActionSpec {
    name: "test.hang",
    summary: "Never ends.",
    args: <TestArgs as ArgsSchema>::ARGS,
    outputs: &[],
    exclusive: &[],
    mutating: "never",
    default_expect: "no error",
};

impl ActionImpl for Meet {
    type Args = TestArgs;
    const MAY_MUTATE: bool = false;

    fn spec(&self) -> &'static ActionSpec {
        &MEET_SPEC
    }

    fn describe(&self, _a: &TestArgs, _env: &EnvConfig) -> String {
        "meet at the barrier".into()
    }

    fn execute<'a>(
        &'a self,
        _cx: &'a StepContext,
        a: TestArgs,
    ) -> BoxFuture<'a, Result<Outputs, ActionError>> {
        Box::pin(async move {
            let p = self.0;
            p.runs.fetch_add(1, Ordering::SeqCst);
            let now = p.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            p.max_in_flight.fetch_max(now, Ordering::SeqCst);
            p.barrier.wait().await;
            p.in_flight.fetch_sub(1, Ordering::SeqCst);
            if a.fail {
                return Err(ActionError::Failed("failed on demand".into()));
            }
            let mut out = Outputs::new();
            out.insert("seen".into(), now.into());
            Ok(out)
        })
    }
}

impl ActionImpl for Hang {
    type Args = TestArgs;
    const MAY_MUTATE: bool = false;

    fn spec(&self) -> &'static ActionSpec {
        &HANG_SPEC
    }

    fn describe(&self, _a: &TestArgs, _env: &EnvConfig) -> String {
        "hang".into()
    }

    fn execute<'a>(
        &'a self,
        _cx: &'a StepContext,
        _a: TestArgs,
    ) -> BoxFuture<'a, Result<Outputs, ActionError>> {
        Box::pin(async move {
            self.0.hanging.notify_one();
            std::future::pending().await
        })
    }
}

struct Yes;

impl Interact for Yes {
    fn confirm<'a>(&'a self, _req: ConfirmRequest) -> BoxFuture<'a, Decision> {
        Box::pin(async { Decision::Yes { by: Confirmer::Yes } })
    }
    fn manual<'a>(&'a self, _req: ManualRequest) -> BoxFuture<'a, Decision> {
        Box::pin(async {
            Decision::Yes {
                by: Confirmer::YesManual,
            }
        })
    }
}

#[derive(Clone, Default)]
struct Collect(Arc<Mutex<Vec<Event>>>);

impl Reporter for Collect {
    fn event(&mut self, event: &Event) {
        if let Ok(mut v) = self.0.lock() {
            v.push(event.clone());
        }
    }
}

impl Collect {
    fn status(&self, id: &str) -> String {
        self.0
            .lock()
            .map(|v| {
                v.iter()
                    .find_map(|e| match e {
                        Event::StepFinished { path, status, .. } if path == id => {
                            Some(status.as_str().to_string())
                        }
                        _ => None,
                    })
                    .unwrap_or_default()
            })
            .unwrap_or_default()
    }
}

fn probe(barrier: usize) -> &'static Probe {
    Box::leak(Box::new(Probe {
        barrier: tokio::sync::Barrier::new(barrier),
        in_flight: AtomicUsize::new(0),
        max_in_flight: AtomicUsize::new(0),
        runs: AtomicUsize::new(0),
        hanging: tokio::sync::Notify::new(),
    }))
}

/// Runs `yaml` (runbook `t`) with the test actions; a hang guard fails the test rather
/// than letting a scheduler bug block the suite.
fn run(
    probe: &'static Probe,
    yaml: &str,
    max_parallel: usize,
    cancel_when_hanging: bool,
) -> (RunOutcome, Collect) {
    let dir = TempDir::new();
    std::fs::write(dir.path().join("t.yaml"), yaml).expect("write runbook");
    let registry = Registry::builtin()
        .with(Box::leak(Box::new(Meet(probe))))
        .with(Box::leak(Box::new(Hang(probe))));
    let library = Library::scan(&[dir.path().to_path_buf()]).with_registry(registry);
    let config = Config::implicit();
    let req = Request {
        runbook: "t".into(),
        ..Request::default()
    };
    let prepared = match runner::prepare(&config, &library, &req) {
        Ok(p) => p,
        Err(d) => panic!("prepare: {d:?}"),
    };
    let collect = Collect::default();
    let cancel = CancellationToken::new();
    let settings = Settings {
        mode: Mode::Run,
        max_parallel,
        run_id: "test".into(),
        user: "tester".into(),
        interact: Arc::new(Yes),
        reporters: vec![Box::new(collect.clone())],
        cancel: cancel.clone(),
        lock: runner::LockPolicy::None,
        givens: None,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let outcome = rt.block_on(async move {
        if cancel_when_hanging {
            tokio::spawn(async move {
                probe.hanging.notified().await;
                cancel.cancel();
            });
        }
        tokio::time::timeout(Duration::from_secs(30), runner::execute(prepared, settings))
            .await
            .expect("the run finished (a barrier nobody reached would hang here)")
    });
    (outcome, collect)
}

fn wide(n: usize, fail: Option<usize>) -> String {
    let mut yaml = String::from("name: t\ntitle: T\nsteps:\n");
    for i in 0..n {
        let fail = fail == Some(i);
        yaml.push_str(&format!(
            "  - id: s{i}\n    test.meet: {{ fail: {fail} }}\n"
        ));
    }
    yaml
}

#[test]
fn independent_steps_all_run_at_once() {
    // Forty steps meet at a barrier of forty: only a scheduler that runs them all
    // together can finish.
    let p = probe(40);
    let (outcome, _) = run(p, &wide(40, None), 128, false);
    assert_eq!(outcome.status, RunStatus::Ok);
    assert_eq!(p.max_in_flight.load(Ordering::SeqCst), 40);
}

#[test]
fn max_parallel_is_an_exact_bound() {
    // Thirty steps, five at a time, meeting in groups of five: exactly five in flight.
    let p = probe(5);
    let (outcome, _) = run(p, &wide(30, None), 5, false);
    assert_eq!(outcome.status, RunStatus::Ok);
    assert_eq!(p.runs.load(Ordering::SeqCst), 30);
    assert_eq!(p.max_in_flight.load(Ordering::SeqCst), 5);
}

#[test]
fn a_failure_skips_its_dependents_only_and_when_branches_on_it() {
    let p = probe(1);
    let yaml = r#"name: t
title: T
steps:
  - id: a
    test.meet: { fail: true }
  - id: b
    test.meet: {}
  - id: after-a
    needs: [a]
    test.meet: {}
  - id: after-after
    needs: [after-a]
    test.meet: {}
  - id: on-failure
    needs: [a, b]
    when: steps.a.status == "error"
    test.meet: {}
  - id: on-success
    needs: [a]
    when: steps.a.status == "ok"
    test.meet: {}
"#;
    let (outcome, events) = run(p, yaml, 128, false);
    assert_eq!(outcome.status, RunStatus::Failed);
    assert_eq!(events.status("a"), "error");
    assert_eq!(events.status("b"), "ok");
    assert_eq!(events.status("after-a"), "skipped");
    assert_eq!(events.status("after-after"), "skipped");
    assert_eq!(events.status("on-failure"), "ok");
    assert_eq!(events.status("on-success"), "skipped");
}

#[test]
fn cancelling_ends_running_and_waiting_steps_as_cancelled() {
    let p = probe(1);
    let yaml = "name: t\ntitle: T\nsteps:\n  - id: hang\n    test.hang: {}\n  - id: later\n    needs: [hang]\n    test.meet: {}\n";
    let (outcome, events) = run(p, yaml, 128, true);
    assert_eq!(outcome.status, RunStatus::Cancelled);
    assert_eq!(events.status("hang"), "cancelled");
    assert_eq!(events.status("later"), "cancelled");
}
