//! A small GraphQL parser for the subset the reference GraphQL target serves: one or
//! more operations (`query` / `mutation`, or a bare selection set), variable
//! definitions (types are read and ignored), fields with aliases, arguments and
//! selection sets, and every value literal (variables, numbers, strings, block strings
//! are not needed, booleans, null, enums, lists, objects). Fragments and directives are
//! refused with a message, as a strict server would.

use serde_json::{Map, Value};

/// An operation: its kind and its top-level fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    /// `query` or `mutation`.
    pub kind: String,
    pub name: Option<String>,
    pub fields: Vec<Field>,
}

/// A field with its alias, arguments and selection set.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub alias: Option<String>,
    pub name: String,
    pub args: Vec<(String, Literal)>,
    pub selection: Vec<Field>,
}

impl Field {
    /// The key of this field in the answer.
    pub fn key(&self) -> &str {
        self.alias.as_deref().unwrap_or(&self.name)
    }
}

/// A value as written in the document.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Var(String),
    Json(Value),
    List(Vec<Literal>),
    Object(Vec<(String, Literal)>),
}

impl Literal {
    /// The value with variables filled in (an unknown variable is `null`).
    pub fn resolve(&self, vars: &Map<String, Value>) -> Value {
        match self {
            Literal::Var(v) => vars.get(v).cloned().unwrap_or(Value::Null),
            Literal::Json(j) => j.clone(),
            Literal::List(l) => Value::Array(l.iter().map(|x| x.resolve(vars)).collect()),
            Literal::Object(o) => Value::Object(
                o.iter()
                    .map(|(k, v)| (k.clone(), v.resolve(vars)))
                    .collect(),
            ),
        }
    }
}

/// Parses a document into its operations.
pub fn parse(src: &str) -> Result<Vec<Operation>, String> {
    let mut p = Parser {
        s: src.as_bytes(),
        i: 0,
    };
    let mut ops = Vec::new();
    p.skip();
    while p.i < p.s.len() {
        ops.push(p.operation()?);
        p.skip();
    }
    if ops.is_empty() {
        return Err("Syntax Error: the document has no operation".into());
    }
    Ok(ops)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    /// Skips white space, commas and comments.
    fn skip(&mut self) {
        while self.i < self.s.len() {
            match self.s[self.i] {
                b' ' | b'\t' | b'\n' | b'\r' | b',' => self.i += 1,
                b'#' => {
                    while self.i < self.s.len() && self.s[self.i] != b'\n' {
                        self.i += 1;
                    }
                }
                _ => break,
            }
        }
    }

    fn err<T>(&self, what: &str) -> Result<T, String> {
        Err(format!("Syntax Error: {what} at offset {}", self.i))
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip();
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: u8) -> Result<(), String> {
        if self.eat(c) {
            Ok(())
        } else {
            self.err(&format!("expected `{}`", c as char))
        }
    }

    fn name(&mut self) -> Result<String, String> {
        self.skip();
        let start = self.i;
        while self.i < self.s.len()
            && (self.s[self.i].is_ascii_alphanumeric() || self.s[self.i] == b'_')
        {
            self.i += 1;
        }
        if start == self.i || self.s[start].is_ascii_digit() {
            return self.err("expected a name");
        }
        Ok(String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }

    fn operation(&mut self) -> Result<Operation, String> {
        if self.peek() == Some(b'{') {
            return Ok(Operation {
                kind: "query".into(),
                name: None,
                fields: self.selection()?,
            });
        }
        let kind = self.name()?;
        if kind == "fragment" || kind == "subscription" {
            return self.err(&format!("`{kind}` is not supported here"));
        }
        if kind != "query" && kind != "mutation" {
            return self.err(&format!("unexpected `{kind}`"));
        }
        let name = match self.peek() {
            Some(c) if c.is_ascii_alphabetic() || c == b'_' => Some(self.name()?),
            _ => None,
        };
        if self.eat(b'(') {
            while !self.eat(b')') {
                self.expect(b'$')?;
                self.name()?;
                self.expect(b':')?;
                self.type_ref()?;
                if self.eat(b'=') {
                    self.value()?;
                }
            }
        }
        Ok(Operation {
            kind,
            name,
            fields: self.selection()?,
        })
    }

    fn type_ref(&mut self) -> Result<(), String> {
        if self.eat(b'[') {
            self.type_ref()?;
            self.expect(b']')?;
        } else {
            self.name()?;
        }
        self.eat(b'!');
        Ok(())
    }

    fn selection(&mut self) -> Result<Vec<Field>, String> {
        self.expect(b'{')?;
        let mut fields = Vec::new();
        while !self.eat(b'}') {
            if self.peek().is_none() {
                return self.err("unterminated selection set");
            }
            if self.peek() == Some(b'.') || self.peek() == Some(b'@') {
                return self.err("fragments and directives are not supported here");
            }
            let first = self.name()?;
            let (alias, name) = if self.eat(b':') {
                (Some(first), self.name()?)
            } else {
                (None, first)
            };
            let mut args = Vec::new();
            if self.eat(b'(') {
                while !self.eat(b')') {
                    let k = self.name()?;
                    self.expect(b':')?;
                    args.push((k, self.value()?));
                }
            }
            let selection = if self.peek() == Some(b'{') {
                self.selection()?
            } else {
                Vec::new()
            };
            fields.push(Field {
                alias,
                name,
                args,
                selection,
            });
        }
        Ok(fields)
    }

    fn value(&mut self) -> Result<Literal, String> {
        match self.peek() {
            Some(b'$') => {
                self.i += 1;
                Ok(Literal::Var(self.name()?))
            }
            Some(b'"') => self.string().map(|s| Literal::Json(Value::String(s))),
            Some(b'[') => {
                self.i += 1;
                let mut items = Vec::new();
                while !self.eat(b']') {
                    if self.peek().is_none() {
                        return self.err("unterminated list");
                    }
                    items.push(self.value()?);
                }
                Ok(Literal::List(items))
            }
            Some(b'{') => {
                self.i += 1;
                let mut fields = Vec::new();
                while !self.eat(b'}') {
                    let k = self.name()?;
                    self.expect(b':')?;
                    fields.push((k, self.value()?));
                }
                Ok(Literal::Object(fields))
            }
            Some(c) if c == b'-' || c.is_ascii_digit() => {
                let start = self.i;
                self.i += 1;
                while self.i < self.s.len()
                    && matches!(
                        self.s[self.i],
                        b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-'
                    )
                {
                    self.i += 1;
                }
                let text = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
                match serde_json::from_str::<Value>(&text) {
                    Ok(v @ Value::Number(_)) => Ok(Literal::Json(v)),
                    _ => self.err("bad number"),
                }
            }
            Some(_) => {
                let n = self.name()?;
                Ok(Literal::Json(match n.as_str() {
                    "true" => Value::Bool(true),
                    "false" => Value::Bool(false),
                    "null" => Value::Null,
                    _ => Value::String(n), // an enum value
                }))
            }
            None => self.err("expected a value"),
        }
    }

    fn string(&mut self) -> Result<String, String> {
        // A JSON string is a GraphQL string for everything this target needs.
        let start = self.i;
        self.i += 1;
        while self.i < self.s.len() {
            match self.s[self.i] {
                b'\\' => self.i += 2,
                b'"' => {
                    self.i += 1;
                    let text = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
                    return serde_json::from_str(&text).or_else(|_| self.err("bad string"));
                }
                _ => self.i += 1,
            }
        }
        self.err("unterminated string")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_served_subset() {
        let ops = parse(
            r#"mutation Rename($id: UUID!, $patch: BrandPatch!) {
                 # a comment
                 r: updateBrandById(input: {id: $id, patch: $patch, n: [1, -2.5, "x", null, ENUM]}) { brand { id name } }
               }
               query { allBrands { nodes { id } } }"#,
        )
        .unwrap();
        assert_eq!(ops.len(), 2);
        let f = &ops[0].fields[0];
        assert_eq!((f.key(), f.name.as_str()), ("r", "updateBrandById"));
        let mut vars = Map::new();
        vars.insert("id".into(), Value::from("x1"));
        let input = f.args[0].1.resolve(&vars);
        assert_eq!(input["id"], "x1");
        assert_eq!(input["patch"], Value::Null);
        assert_eq!(input["n"], serde_json::json!([1, -2.5, "x", null, "ENUM"]));
        assert_eq!(f.selection[0].selection[1].name, "name");
        assert_eq!(parse("{ a }").unwrap()[0].kind, "query");
        for bad in [
            "",
            "{ a ",
            "query { ...F }",
            "{ a(x: ) }",
            "fragment F on X { a }",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
