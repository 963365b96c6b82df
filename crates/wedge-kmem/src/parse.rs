//! The expression language: C expressions as people type them into gdb,
//! crash and drgn, parsed into a tree whose every node knows the columns it
//! came from (so an error can point at them).
//!
//! The parser needs to know which names are types — `(pid_t)x` is a cast,
//! `(x)` an expression — as a C compiler does from its typedefs; it asks a
//! callback. It never panics: every input gives a tree or an error.

use std::fmt;

/// Byte range `[start, end)` of the expression text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    fn to(self, other: Span) -> Span {
        Span {
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }
}

/// An error in (or about) an expression, with the part it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExprError {
    pub msg: String,
    pub span: Option<Span>,
}

impl ExprError {
    pub fn at(span: Span, msg: impl Into<String>) -> ExprError {
        ExprError {
            msg: msg.into(),
            span: Some(span),
        }
    }

    /// The message, then the expression with `^` under the part it is
    /// about (columns counted in characters, not bytes).
    pub fn render(&self, text: &str) -> String {
        let Some(sp) = self.span else {
            return self.msg.clone();
        };
        let col = |b: usize| {
            text.get(..b.min(text.len()))
                .map_or(0, |s| s.chars().count())
        };
        let (a, b) = (col(sp.start), col(sp.end));
        let line: String = text
            .chars()
            .map(|c| if c == '\n' || c == '\t' { ' ' } else { c })
            .collect();
        format!(
            "{} (column {})\n  {line}\n  {}{}",
            self.msg,
            a + 1,
            " ".repeat(a),
            "^".repeat((b.max(a + 1)) - a)
        )
    }
}

impl fmt::Display for ExprError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for ExprError {}

/// The base of a type name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypeBase {
    Struct(String),
    Union(String),
    Enum(String),
    /// A typedef name, or a builtin (`unsigned long`, `char`, `void`) in a
    /// canonical spelling.
    Named(String),
}

/// A type as written: `struct task_struct *`, `unsigned long`, `pid_t`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeName {
    pub base: TypeBase,
    pub pointers: u32,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unary {
    Neg,
    Plus,
    Not,
    BitNot,
    Deref,
    Addr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binary {
    Mul,
    Div,
    Rem,
    Add,
    Sub,
    Shl,
    Shr,
    Lt,
    Gt,
    Le,
    Ge,
    Eq,
    Ne,
    BitAnd,
    BitXor,
    BitOr,
    And,
    Or,
}

impl Binary {
    pub fn symbol(self) -> &'static str {
        match self {
            Binary::Mul => "*",
            Binary::Div => "/",
            Binary::Rem => "%",
            Binary::Add => "+",
            Binary::Sub => "-",
            Binary::Shl => "<<",
            Binary::Shr => ">>",
            Binary::Lt => "<",
            Binary::Gt => ">",
            Binary::Le => "<=",
            Binary::Ge => ">=",
            Binary::Eq => "==",
            Binary::Ne => "!=",
            Binary::BitAnd => "&",
            Binary::BitXor => "^",
            Binary::BitOr => "|",
            Binary::And => "&&",
            Binary::Or => "||",
        }
    }

    fn of(p: &str) -> Option<(Binary, u8)> {
        // C's precedence, higher binds tighter.
        Some(match p {
            "*" => (Binary::Mul, 10),
            "/" => (Binary::Div, 10),
            "%" => (Binary::Rem, 10),
            "+" => (Binary::Add, 9),
            "-" => (Binary::Sub, 9),
            "<<" => (Binary::Shl, 8),
            ">>" => (Binary::Shr, 8),
            "<" => (Binary::Lt, 7),
            ">" => (Binary::Gt, 7),
            "<=" => (Binary::Le, 7),
            ">=" => (Binary::Ge, 7),
            "==" => (Binary::Eq, 6),
            "!=" => (Binary::Ne, 6),
            "&" => (Binary::BitAnd, 5),
            "^" => (Binary::BitXor, 4),
            "|" => (Binary::BitOr, 3),
            "&&" => (Binary::And, 2),
            "||" => (Binary::Or, 1),
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExprKind {
    Num(u64),
    Ident(String),
    /// `.name` (`arrow` false) or `->name`.
    Member {
        base: Box<Expr>,
        name: String,
        name_span: Span,
        arrow: bool,
    },
    Index(Box<Expr>, Box<Expr>),
    Unary(Unary, Box<Expr>),
    Binary(Binary, Box<Expr>, Box<Expr>),
    /// `cond ? a : b`: only the branch chosen is evaluated, as in C.
    Cond(Box<Expr>, Box<Expr>, Box<Expr>),
    Cast(TypeName, Box<Expr>),
    SizeofType(TypeName),
    SizeofExpr(Box<Expr>),
    /// `offsetof(type, a.b)`.
    Offsetof(TypeName, Vec<(String, Span)>),
    /// `container_of(ptr, type, a.b)`.
    ContainerOf(Box<Expr>, TypeName, Vec<(String, Span)>),
    /// `list_for_each_entry(head, type, a.b)` (`hlist` false) or
    /// `hlist_for_each_entry(head, type, a.b)`: the entries of a list.
    ListForEach {
        head: Box<Expr>,
        ty: TypeName,
        member: Vec<(String, Span)>,
        hlist: bool,
    },
    /// A helper: `per_cpu(var, cpu)`, `per_cpu_ptr(ptr, cpu)`, `task(pid)`.
    Call(String, Vec<Expr>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Num(u64),
    Ident(String),
    Punct(&'static str),
    End,
}

const PUNCTS: [&str; 30] = [
    "->", "<<", ">>", "<=", ">=", "==", "!=", "&&", "||", ".", "[", "]", "(", ")", ",", "*", "&",
    "-", "+", "!", "~", "/", "%", "<", ">", "^", "|", "?", ":", "=",
];

fn lex(text: &str) -> Result<Vec<(Tok, Span)>, ExprError> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        if c.is_ascii_digit() {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            let word = &text[start..i];
            let sp = Span { start, end: i };
            let digits = word.trim_end_matches(['u', 'U', 'l', 'L']);
            let v = if let Some(h) = digits
                .strip_prefix("0x")
                .or_else(|| digits.strip_prefix("0X"))
            {
                u64::from_str_radix(h, 16)
            } else if let Some(bin) = digits
                .strip_prefix("0b")
                .or_else(|| digits.strip_prefix("0B"))
            {
                u64::from_str_radix(bin, 2)
            } else if digits.len() > 1 && digits.starts_with('0') {
                u64::from_str_radix(&digits[1..], 8)
            } else {
                digits.parse::<u64>()
            };
            let v = v.map_err(|_| ExprError::at(sp, format!("bad number {word:?}")))?;
            out.push((Tok::Num(v), sp));
            continue;
        }
        if c.is_ascii_alphabetic() || c == b'_' || c == b'$' {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'$') {
                i += 1;
            }
            out.push((
                Tok::Ident(text[start..i].to_string()),
                Span { start, end: i },
            ));
            continue;
        }
        if c == b'\'' {
            // A character constant: 'a', '\n', '\0'.
            let rest = &b[i + 1..];
            let (v, len) = match rest {
                [b'\\', e, b'\'', ..] => (
                    match e {
                        b'n' => b'\n',
                        b't' => b'\t',
                        b'0' => 0,
                        b'r' => b'\r',
                        other => *other,
                    },
                    4,
                ),
                [ch, b'\'', ..] if ch.is_ascii() => (*ch, 3),
                _ => {
                    return Err(ExprError::at(
                        Span {
                            start,
                            end: start + 1,
                        },
                        "bad character constant",
                    ))
                }
            };
            i += len;
            out.push((Tok::Num(v as u64), Span { start, end: i }));
            continue;
        }
        match PUNCTS.iter().find(|p| b[i..].starts_with(p.as_bytes())) {
            Some(p) => {
                i += p.len();
                out.push((Tok::Punct(p), Span { start, end: i }));
            }
            None => {
                let ch = text[i..].chars().next().unwrap_or('?');
                return Err(ExprError::at(
                    Span {
                        start,
                        end: start + ch.len_utf8(),
                    },
                    format!("unexpected character {ch:?}"),
                ));
            }
        }
    }
    out.push((
        Tok::End,
        Span {
            start: b.len(),
            end: b.len(),
        },
    ));
    Ok(out)
}

/// Words that start a builtin type name.
const TYPE_WORDS: [&str; 13] = [
    "struct", "union", "enum", "const", "volatile", "unsigned", "signed", "char", "short", "int",
    "long", "void", "_Bool",
];

/// Nesting allowed in one expression: deeper input is refused rather than
/// risking the stack (the parser recurses per level).
const MAX_DEPTH: u32 = 200;

struct Parser<'a> {
    toks: Vec<(Tok, Span)>,
    pos: usize,
    is_type: &'a dyn Fn(&str) -> bool,
    depth: u32,
}

/// Parses an expression. `is_type` says whether a name is a type (a
/// typedef); builtin type words are known.
pub fn parse(text: &str, is_type: &dyn Fn(&str) -> bool) -> Result<Expr, ExprError> {
    if text.len() > 64 << 10 {
        return Err(ExprError {
            msg: format!("expression too long ({} bytes, at most 65536)", text.len()),
            span: None,
        });
    }
    let mut p = Parser {
        toks: lex(text)?,
        pos: 0,
        is_type,
        depth: 0,
    };
    let e = p.expr()?;
    p.expect_end()?;
    Ok(e)
}

/// Parses a type name alone (`ptype struct task_struct`); `None` when the
/// text does not start like one.
pub fn parse_type(
    text: &str,
    is_type: &dyn Fn(&str) -> bool,
) -> Result<Option<TypeName>, ExprError> {
    let mut p = Parser {
        toks: lex(text)?,
        pos: 0,
        is_type,
        depth: 0,
    };
    if !p.at_type() {
        return Ok(None);
    }
    let t = p.type_name()?;
    p.expect_end()?;
    Ok(Some(t))
}

impl Parser<'_> {
    fn peek(&self) -> &Tok {
        self.toks.get(self.pos).map_or(&Tok::End, |t| &t.0)
    }
    fn span(&self) -> Span {
        self.toks
            .get(self.pos)
            .or(self.toks.last())
            .map_or(Span { start: 0, end: 0 }, |t| t.1)
    }
    fn bump(&mut self) -> (Tok, Span) {
        let t = self
            .toks
            .get(self.pos)
            .cloned()
            .unwrap_or((Tok::End, self.span()));
        if self.pos < self.toks.len() {
            self.pos += 1;
        }
        t
    }
    fn is_punct(&self, p: &str) -> bool {
        matches!(self.peek(), Tok::Punct(q) if *q == p)
    }
    fn describe(t: &Tok) -> String {
        match t {
            Tok::Num(n) => format!("number {n}"),
            Tok::Ident(s) => format!("{s:?}"),
            Tok::Punct(p) => format!("{p:?}"),
            Tok::End => "the end of the expression".into(),
        }
    }
    fn expect(&mut self, p: &str) -> Result<Span, ExprError> {
        if self.is_punct(p) {
            return Ok(self.bump().1);
        }
        Err(ExprError::at(
            self.span(),
            format!("expected {p:?}, found {}", Self::describe(self.peek())),
        ))
    }
    fn expect_end(&mut self) -> Result<(), ExprError> {
        match self.peek() {
            Tok::End => Ok(()),
            t => Err(ExprError::at(
                self.span(),
                format!("unexpected {} after the expression", Self::describe(t)),
            )),
        }
    }
    fn ident(&mut self, what: &str) -> Result<(String, Span), ExprError> {
        match self.bump() {
            (Tok::Ident(s), sp) => Ok((s, sp)),
            (t, sp) => Err(ExprError::at(
                sp,
                format!("expected {what}, found {}", Self::describe(&t)),
            )),
        }
    }

    fn at_type(&self) -> bool {
        match self.peek() {
            Tok::Ident(s) => TYPE_WORDS.contains(&s.as_str()) || s == "bool" || (self.is_type)(s),
            _ => false,
        }
    }

    fn type_name(&mut self) -> Result<TypeName, ExprError> {
        let start = self.span();
        let mut words: Vec<String> = Vec::new();
        let mut base = None;
        while let Tok::Ident(w) = self.peek().clone() {
            match w.as_str() {
                "const" | "volatile" => {
                    self.bump();
                }
                "struct" | "union" | "enum" if base.is_none() && words.is_empty() => {
                    self.bump();
                    let (n, _) = self.ident(&format!("a {w} name"))?;
                    base = Some(match w.as_str() {
                        "struct" => TypeBase::Struct(n),
                        "union" => TypeBase::Union(n),
                        _ => TypeBase::Enum(n),
                    });
                }
                "unsigned" | "signed" | "char" | "short" | "int" | "long" | "void" | "_Bool"
                | "bool"
                    if base.is_none() =>
                {
                    self.bump();
                    words.push(w);
                }
                _ if base.is_none() && words.is_empty() && (self.is_type)(&w) => {
                    self.bump();
                    base = Some(TypeBase::Named(w));
                }
                _ => break,
            }
        }
        let base = match base {
            Some(b) => b,
            None if !words.is_empty() => TypeBase::Named(canonical(&words).ok_or_else(|| {
                ExprError::at(
                    start.to(self.prev_span()),
                    format!("not a type: {}", words.join(" ")),
                )
            })?),
            None => {
                return Err(ExprError::at(
                    self.span(),
                    format!("expected a type, found {}", Self::describe(self.peek())),
                ))
            }
        };
        let mut pointers = 0;
        while self.is_punct("*")
            || matches!(self.peek(), Tok::Ident(w) if w == "const" || w == "volatile")
        {
            if self.is_punct("*") {
                pointers += 1;
            }
            self.bump();
        }
        Ok(TypeName {
            base,
            pointers,
            span: start.to(self.prev_span()),
        })
    }

    fn prev_span(&self) -> Span {
        self.pos
            .checked_sub(1)
            .and_then(|i| self.toks.get(i))
            .map_or(Span { start: 0, end: 0 }, |t| t.1)
    }

    fn enter(&mut self) -> Result<(), ExprError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(ExprError::at(self.span(), "expression nested too deeply"));
        }
        Ok(())
    }

    fn expr(&mut self) -> Result<Expr, ExprError> {
        self.enter()?;
        let e = self.conditional();
        self.depth -= 1;
        e
    }

    /// `a ? b : c`, below `||` and right-associative as in C: `a ? b : c ?
    /// d : e` is `a ? b : (c ? d : e)`. The middle operand is a whole
    /// expression (C allows one there); the last is another conditional.
    fn conditional(&mut self) -> Result<Expr, ExprError> {
        let cond = self.binary(1)?;
        if !self.is_punct("?") {
            return Ok(cond);
        }
        self.bump();
        let yes = self.expr()?;
        self.expect(":")?;
        let no = self.expr()?;
        let span = cond.span.to(no.span);
        Ok(Expr {
            kind: ExprKind::Cond(Box::new(cond), Box::new(yes), Box::new(no)),
            span,
        })
    }

    fn binary(&mut self, min: u8) -> Result<Expr, ExprError> {
        let mut lhs = self.unary()?;
        while let Tok::Punct(p) = self.peek() {
            let Some((op, prec)) = Binary::of(p) else {
                break;
            };
            if prec < min {
                break;
            }
            self.bump();
            let rhs = self.binary(prec + 1)?;
            let span = lhs.span.to(rhs.span);
            lhs = Expr {
                kind: ExprKind::Binary(op, Box::new(lhs), Box::new(rhs)),
                span,
            };
        }
        Ok(lhs)
    }

    fn unary(&mut self) -> Result<Expr, ExprError> {
        self.enter()?;
        let e = self.unary1();
        self.depth -= 1;
        e
    }

    fn unary1(&mut self) -> Result<Expr, ExprError> {
        let sp = self.span();
        let op = match self.peek() {
            Tok::Punct("-") => Some(Unary::Neg),
            Tok::Punct("+") => Some(Unary::Plus),
            Tok::Punct("!") => Some(Unary::Not),
            Tok::Punct("~") => Some(Unary::BitNot),
            Tok::Punct("*") => Some(Unary::Deref),
            Tok::Punct("&") => Some(Unary::Addr),
            _ => None,
        };
        if let Some(op) = op {
            self.bump();
            let e = self.unary()?;
            let span = sp.to(e.span);
            return Ok(Expr {
                kind: ExprKind::Unary(op, Box::new(e)),
                span,
            });
        }
        // A cast: `(` then a type name.
        if self.is_punct("(") {
            let save = self.pos;
            self.bump();
            let t = if self.at_type() {
                let t = self.type_name()?;
                self.expect(")")?;
                Some(t)
            } else {
                self.unknown_cast()
            };
            if let Some(t) = t {
                let e = self.unary()?;
                let span = sp.to(e.span);
                return Ok(Expr {
                    kind: ExprKind::Cast(t, Box::new(e)),
                    span,
                });
            }
            self.pos = save;
        }
        if matches!(self.peek(), Tok::Ident(w) if w == "sizeof") {
            self.bump();
            if self.is_punct("(") {
                let save = self.pos;
                self.bump();
                if self.at_type() {
                    let t = self.type_name()?;
                    let end = self.expect(")")?;
                    return Ok(Expr {
                        kind: ExprKind::SizeofType(t),
                        span: sp.to(end),
                    });
                }
                self.pos = save;
            }
            let e = self.unary()?;
            let span = sp.to(e.span);
            return Ok(Expr {
                kind: ExprKind::SizeofExpr(Box::new(e)),
                span,
            });
        }
        self.postfix()
    }

    /// After a `(`: `name *)` or `name) operand` with a name that is no
    /// type is a cast all the same — no expression reads so — to a type
    /// the user misspelt or wrote without its keyword (`(task_struct *)p`,
    /// `(u46)1`). Taken as a cast to that name, the evaluator refuses it
    /// naming the near types, rather than the parser stumbling on the `)`.
    fn unknown_cast(&mut self) -> Option<TypeName> {
        let tok = |i: usize| self.toks.get(i).map(|t| &t.0);
        let at = self.pos;
        let Some(Tok::Ident(name)) = tok(at) else {
            return None;
        };
        if name == "sizeof" {
            return None;
        }
        let mut i = at + 1;
        while matches!(tok(i), Some(Tok::Punct("*"))) {
            i += 1;
        }
        let pointers = (i - at - 1) as u32;
        if !matches!(tok(i), Some(Tok::Punct(")"))) {
            return None;
        }
        let operand = matches!(
            tok(i + 1),
            Some(Tok::Num(_) | Tok::Ident(_) | Tok::Punct("("))
        );
        if pointers == 0 && !operand {
            return None;
        }
        let span = self.toks[at].1.to(self.toks[i - 1].1);
        let base = TypeBase::Named(name.clone());
        self.pos = i + 1;
        Some(TypeName {
            base,
            pointers,
            span,
        })
    }

    fn member_path(&mut self) -> Result<Vec<(String, Span)>, ExprError> {
        let mut path = vec![self.ident("a member name")?];
        while self.is_punct(".") {
            self.bump();
            path.push(self.ident("a member name")?);
        }
        Ok(path)
    }

    fn postfix(&mut self) -> Result<Expr, ExprError> {
        let mut e = self.primary()?;
        loop {
            if self.is_punct(".") || self.is_punct("->") {
                let arrow = self.is_punct("->");
                self.bump();
                let (name, name_span) = self.ident("a member name")?;
                let span = e.span.to(name_span);
                e = Expr {
                    kind: ExprKind::Member {
                        base: Box::new(e),
                        name,
                        name_span,
                        arrow,
                    },
                    span,
                };
            } else if self.is_punct("[") {
                self.bump();
                let i = self.expr()?;
                let end = self.expect("]")?;
                let span = e.span.to(end);
                e = Expr {
                    kind: ExprKind::Index(Box::new(e), Box::new(i)),
                    span,
                };
            } else {
                return Ok(e);
            }
        }
    }

    fn primary(&mut self) -> Result<Expr, ExprError> {
        let (t, sp) = self.bump();
        match t {
            Tok::Num(n) => Ok(Expr {
                kind: ExprKind::Num(n),
                span: sp,
            }),
            Tok::Punct("(") => {
                let e = self.expr()?;
                let end = self.expect(")")?;
                Ok(Expr {
                    kind: e.kind,
                    span: sp.to(end),
                })
            }
            Tok::Ident(name) if self.is_punct("(") => {
                self.bump();
                let kind = match name.as_str() {
                    "offsetof" => {
                        let t = self.type_name()?;
                        self.expect(",")?;
                        ExprKind::Offsetof(t, self.member_path()?)
                    }
                    "container_of" => {
                        let p = self.expr()?;
                        self.expect(",")?;
                        let t = self.type_name()?;
                        self.expect(",")?;
                        ExprKind::ContainerOf(Box::new(p), t, self.member_path()?)
                    }
                    "list_for_each_entry" | "hlist_for_each_entry" => {
                        let head = self.expr()?;
                        self.expect(",")?;
                        let ty = self.type_name()?;
                        self.expect(",")?;
                        ExprKind::ListForEach {
                            head: Box::new(head),
                            ty,
                            member: self.member_path()?,
                            hlist: name.starts_with('h'),
                        }
                    }
                    _ => {
                        let mut args = Vec::new();
                        if !self.is_punct(")") {
                            loop {
                                args.push(self.expr()?);
                                if !self.is_punct(",") {
                                    break;
                                }
                                self.bump();
                            }
                        }
                        ExprKind::Call(name, args)
                    }
                };
                let end = self.expect(")")?;
                Ok(Expr {
                    kind,
                    span: sp.to(end),
                })
            }
            Tok::Ident(name) => Ok(Expr {
                kind: ExprKind::Ident(name),
                span: sp,
            }),
            t => Err(ExprError::at(
                sp,
                format!("expected an expression, found {}", Self::describe(&t)),
            )),
        }
    }
}

/// The canonical spelling of a builtin type's words (`long unsigned` →
/// `unsigned long`); `None` for a combination C does not have.
fn canonical(words: &[String]) -> Option<String> {
    let count = |w: &str| words.iter().filter(|x| *x == w).count();
    let (uns, sig) = (count("unsigned"), count("signed"));
    let (ch, sh, int, long, void, b) = (
        count("char"),
        count("short"),
        count("int"),
        count("long"),
        count("void"),
        count("_Bool") + count("bool"),
    );
    if uns + sig > 1 || ch + sh + void + b > 1 || int > 1 || long > 2 {
        return None;
    }
    let sign = if uns == 1 {
        "unsigned "
    } else if sig == 1 && ch == 1 {
        "signed "
    } else {
        ""
    };
    let core = if void == 1 {
        if words.len() > 1 {
            return None;
        }
        "void"
    } else if b == 1 {
        if words.len() > 1 {
            return None;
        }
        "_Bool"
    } else if ch == 1 {
        if sh + long + int > 0 {
            return None;
        }
        "char"
    } else if sh == 1 {
        if long > 0 {
            return None;
        }
        "short"
    } else if long == 2 {
        "long long"
    } else if long == 1 {
        "long"
    } else {
        "int"
    };
    Some(format!("{sign}{core}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Expr, ExprError> {
        parse(s, &|n| n == "pid_t")
    }

    /// The tree in a compact prefix form, for comparing shapes.
    fn sexp(e: &Expr) -> String {
        match &e.kind {
            ExprKind::Num(n) => n.to_string(),
            ExprKind::Ident(s) => s.clone(),
            ExprKind::Member {
                base, name, arrow, ..
            } => {
                format!(
                    "({} {} {name})",
                    if *arrow { "->" } else { "." },
                    sexp(base)
                )
            }
            ExprKind::Index(a, b) => format!("([] {} {})", sexp(a), sexp(b)),
            ExprKind::Unary(op, a) => format!("({op:?} {})", sexp(a)),
            ExprKind::Binary(op, a, b) => format!("({} {} {})", op.symbol(), sexp(a), sexp(b)),
            ExprKind::Cond(c, a, b) => format!("(? {} {} {})", sexp(c), sexp(a), sexp(b)),
            ExprKind::Cast(t, a) => format!(
                "(cast {:?}{} {})",
                t.base,
                "*".repeat(t.pointers as usize),
                sexp(a)
            ),
            ExprKind::SizeofType(t) => format!("(sizeof {:?})", t.base),
            ExprKind::SizeofExpr(a) => format!("(sizeof {})", sexp(a)),
            ExprKind::Offsetof(t, m) => format!(
                "(offsetof {:?} {})",
                t.base,
                m.iter().map(|x| x.0.as_str()).collect::<Vec<_>>().join(".")
            ),
            ExprKind::ContainerOf(a, t, m) => format!(
                "(container_of {} {:?} {})",
                sexp(a),
                t.base,
                m.iter().map(|x| x.0.as_str()).collect::<Vec<_>>().join(".")
            ),
            ExprKind::ListForEach {
                head,
                ty,
                member,
                hlist,
            } => format!(
                "({}list {} {:?} {})",
                if *hlist { "h" } else { "" },
                sexp(head),
                ty.base,
                member
                    .iter()
                    .map(|x| x.0.as_str())
                    .collect::<Vec<_>>()
                    .join(".")
            ),
            ExprKind::Call(n, args) => format!(
                "({n} {})",
                args.iter().map(sexp).collect::<Vec<_>>().join(" ")
            ),
        }
    }

    #[test]
    fn precedence_as_c() {
        let cases = [
            ("1 + 2 * 3", "(+ 1 (* 2 3))"),
            ("1 - 2 - 3", "(- (- 1 2) 3)"),
            ("a || b && c", "(|| a (&& b c))"),
            ("a == b < c", "(== a (< b c))"),
            ("a & b == c", "(& a (== b c))"),
            ("1 << 2 + 3", "(<< 1 (+ 2 3))"),
            ("-a->b", "(Neg (-> a b))"),
            ("*a.b[2]", "(Deref ([] (. a b) 2))"),
            ("&init_task.tasks", "(Addr (. init_task tasks))"),
            ("!x | ~y ^ z", "(| (Not x) (^ (BitNot y) z))"),
            ("(x)->y", "(-> x y)"),
            ("(pid_t)x + 1", "(+ (cast Named(\"pid_t\") x) 1)"),
            (
                "(struct task_struct *)&init_task",
                "(cast Struct(\"task_struct\")* (Addr init_task))",
            ),
            (
                "((struct task_struct *)p)->pid",
                "(-> (cast Struct(\"task_struct\")* p) pid)",
            ),
            (
                "(unsigned long long)1",
                "(cast Named(\"unsigned long long\") 1)",
            ),
            ("(long unsigned int)1", "(cast Named(\"unsigned long\") 1)"),
            (
                "sizeof(struct list_head) * 2",
                "(* (sizeof Struct(\"list_head\")) 2)",
            ),
            ("sizeof x + 1", "(+ (sizeof x) 1)"),
            (
                "offsetof(struct task_struct, thread.sp)",
                "(offsetof Struct(\"task_struct\") thread.sp)",
            ),
            (
                "container_of(p, struct task_struct, tasks) == &init_task",
                "(== (container_of p Struct(\"task_struct\") tasks) (Addr init_task))",
            ),
            ("per_cpu(runqueues, 0).cpu", "(. (per_cpu runqueues 0) cpu)"),
            ("task(1)->comm", "(-> (task 1) comm)"),
            (
                "list_for_each_entry(&init_task.tasks, struct task_struct, tasks)[1]->pid",
                "(-> ([] (list (Addr (. init_task tasks)) Struct(\"task_struct\") tasks) 1) pid)",
            ),
            (
                "hlist_for_each_entry(h, struct pid, a.b)",
                "(hlist h Struct(\"pid\") a.b)",
            ),
            (
                "list_count(&init_task.tasks)",
                "(list_count (Addr (. init_task tasks)))",
            ),
            // The conditional: below || (and so below assignment-free
            // everything), right-associative, a whole expression between
            // ? and :.
            // A name that is no type, where only a cast can be: a cast
            // (the evaluator names the near types).
            ("(task_struct *)p", "(cast Named(\"task_struct\")* p)"),
            ("(u46)1", "(cast Named(\"u46\") 1)"),
            ("(x) - 1", "(- x 1)"),
            ("(x)", "x"),
            ("a ? b : c", "(? a b c)"),
            ("a || b ? c : d", "(? (|| a b) c d)"),
            ("a ? b : c ? d : e", "(? a b (? c d e))"),
            ("a ? b ? c : d : e", "(? a (? b c d) e)"),
            ("a ? b || c : d + 1", "(? a (|| b c) (+ d 1))"),
            ("(a ? b : c)->pid", "(-> (? a b c) pid)"),
            ("per_cpu(x, a ? 0 : 1)", "(per_cpu x (? a 0 1))"),
            (
                "0x10 + 010 + 0b11 + 'a' + 10UL",
                "(+ (+ (+ (+ 16 8) 3) 97) 10)",
            ),
        ];
        for (src, want) in cases {
            let e = p(src).unwrap_or_else(|e| panic!("{src}: {}", e.render(src)));
            assert_eq!(sexp(&e), want, "{src}");
        }
    }

    #[test]
    fn errors_point_at_the_column() {
        let src = "init_task.comm +";
        let e = p(src).unwrap_err();
        assert_eq!(e.span, Some(Span { start: 16, end: 16 }));
        assert!(e.render(src).contains("column 17"), "{}", e.render(src));
        let src = "a ) b";
        let e = p(src).unwrap_err();
        assert_eq!(e.span, Some(Span { start: 2, end: 3 }));
        assert_eq!(
            e.render(src),
            "unexpected \")\" after the expression (column 3)\n  a ) b\n    ^"
        );
        let e = p("x # y").unwrap_err();
        assert_eq!(e.span.map(|s| s.start), Some(2));
        let e = p("(struct task_struct *").unwrap_err();
        assert!(e.msg.contains("expected \")\""), "{}", e.msg);
        let e = p("a.").unwrap_err();
        assert!(e.msg.contains("member name"), "{}", e.msg);
        let e = p("0x").unwrap_err();
        assert!(e.msg.contains("bad number"), "{}", e.msg);
        let src = "a ? b";
        let e = p(src).unwrap_err();
        assert_eq!(e.span, Some(Span { start: 5, end: 5 }));
        assert!(e.msg.contains("expected \":\""), "{}", e.msg);
        let e = p("a ? : c").unwrap_err();
        assert_eq!(e.span.map(|s| s.start), Some(4));
        let e = p("(unsigned char long)1").unwrap_err();
        assert!(e.msg.contains("not a type"), "{}", e.msg);
    }

    #[test]
    fn never_panics_on_odd_input() {
        // Deep nesting is refused, not a stack overflow.
        let deep = "(".repeat(100_000) + "1" + &")".repeat(100_000);
        assert!(p(&deep).is_err());
        let deep = "-".repeat(50_000) + "1";
        assert!(p(&deep).is_err());
        let inputs = [
            "",
            "(",
            ")",
            "((",
            "sizeof",
            "sizeof(",
            "sizeof(int",
            "offsetof(",
            "offsetof(struct",
            "container_of(a,",
            "list_for_each_entry(",
            "list_for_each_entry(a, struct",
            "hlist_for_each_entry(a, struct t,",
            "list_count(",
            "'",
            "'\\",
            "é",
            "a->",
            "[",
            "a[",
            "a[1",
            "(int)",
            "struct",
            "&&",
            "a ? b : c",
            "a = b",
            "task(",
            "task(1,",
            "99999999999999999999999",
            "\u{0}",
            "a\u{301}",
            "(pid_t",
            "(pid_t)",
        ];
        for s in inputs {
            let _ = p(s);
            if let Err(e) = p(s) {
                let _ = e.render(s);
            }
        }
        // Every prefix of a real expression.
        let s = "container_of(((struct task_struct *)&init_task)->tasks.next, struct task_struct, tasks)->comm[1] - 'a'";
        for i in 0..=s.len() {
            if let Err(e) = p(&s[..i]) {
                let _ = e.render(&s[..i]);
            }
        }
    }
}
