//! Print the events of a kernel log as JSON lines, then the summary.
//!
//! `cargo run -p wedge-klog --example klog_dump -- FILE`
fn main() -> std::io::Result<()> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "/dev/stdin".into());
    let file = std::fs::File::open(path)?;
    let mut stream = wedge_klog::parse_reader(file);
    for ev in stream.by_ref() {
        let ev = ev?;
        println!("{}", serde_json::to_string(&ev).unwrap_or_default());
    }
    eprintln!(
        "{}",
        serde_json::to_string(stream.summary()).unwrap_or_default()
    );
    Ok(())
}
