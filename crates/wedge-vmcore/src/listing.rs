//! `wedge vmcore DUMP tasks`: every task with its state and whole kernel
//! stack, as the dump has it (no filtering: the raw material for when the
//! analysis missed something).

use crate::stack::Stack;
use crate::tasks::Task;
use crate::Vmcore;
use serde::Serialize;

/// One task of the listing with its walked stack, or why it could not be
/// walked.
#[derive(Debug, Serialize)]
pub struct TaskRow<'a> {
    pub task: &'a Task,
    pub stack: Option<Stack>,
    pub stack_error: Option<String>,
}

/// Every task of the dump, in the kernel's task-list order.
pub fn rows(v: &Vmcore) -> Vec<TaskRow<'_>> {
    v.tasks
        .iter()
        .map(|t| match v.stack(t) {
            Ok(s) => TaskRow {
                task: t,
                stack: Some(s),
                stack_error: None,
            },
            Err(e) => TaskRow {
                task: t,
                stack: None,
                stack_error: Some(e.to_string()),
            },
        })
        .collect()
}

/// The listing as text: `PID COMM STATE (sleep kind)`, then one frame a
/// line (`function+offset/size`, or the bare address with no symbol).
pub fn text(rows: &[TaskRow<'_>]) -> String {
    let mut text = String::new();
    for r in rows {
        let t = r.task;
        let sleep = t.sleep.map(|s| format!(" ({s:?})")).unwrap_or_default();
        text.push_str(&format!("{} {} {}{sleep}\n", t.pid, t.comm, t.state.code()));
        match (&r.stack, &r.stack_error) {
            (Some(s), _) => {
                for f in &s.frames {
                    match &f.function {
                        Some(n) => {
                            text.push_str(&format!("    {n}+{:#x}/{:#x}\n", f.offset, f.size))
                        }
                        None => text.push_str(&format!("    {:#x}\n", f.addr)),
                    }
                }
                if let Some(e) = &s.error {
                    text.push_str(&format!("    (stack ends: {e})\n"));
                }
            }
            (None, Some(e)) => text.push_str(&format!("    (no stack: {e})\n")),
            (None, None) => {}
        }
    }
    text
}
