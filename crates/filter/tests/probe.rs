use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;
#[test]
fn probe() {
    let inputs = std::fs::read_to_string("/tmp/probe.txt").unwrap();
    for line in inputs.lines() {
        let dialect = PostgreSqlDialect {};
        let mut p = match Parser::new(&dialect).try_with_sql(line) { Ok(p) => p, Err(e) => { println!("{line}\n  LEXERR {e:?}"); continue; } };
        match p.parse_expr() {
            Ok(e) => println!("{line}\n  {e:?}\n  next={:?}", p.peek_token()),
            Err(e) => println!("{line}\n  ERR {e:?}"),
        }
    }
}
