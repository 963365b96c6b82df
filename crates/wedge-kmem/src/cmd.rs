//! The commands over a memory source: `eval EXPR [--json]` and
//! `ptype TYPE|EXPR`, each one function the binary calls.

use crate::eval::Evaluator;
use crate::parse::{self, ExprError};
use crate::print::{self, Limits};
use crate::source::KernelMemory;

/// `eval EXPR`: the value as drgn prints it, or with `json` as
/// `{"type": "…", "value": …}`. The error names the column it is about.
pub fn eval(mem: &dyn KernelMemory, expr: &str, json: bool) -> Result<String, String> {
    let ev = Evaluator::new(mem);
    let v = ev.eval_str(expr).map_err(|e| e.render(expr))?;
    let lim = Limits::default();
    if json {
        let j = print::json(&ev, &v, lim).map_err(|e| e.render(expr))?;
        Ok(format!("{j}\n"))
    } else {
        Ok(format!(
            "{}\n",
            print::text(&ev, &v, lim).map_err(|e| e.render(expr))?
        ))
    }
}

/// `ptype TYPE|EXPR`: the layout of a type, or of an expression's type.
pub fn ptype(mem: &dyn KernelMemory, what: &str) -> Result<String, String> {
    let ev = Evaluator::new(mem);
    let run = || -> Result<String, ExprError> {
        let ty = match parse::parse_type(what, &|n| ev.is_type_name(n))? {
            Some(t) => ev.resolve_type(&t)?,
            None => ev.eval_str(what)?.ty,
        };
        Ok(print::layout(&ev, &ty))
    };
    run().map_err(|e| e.render(what))
}
