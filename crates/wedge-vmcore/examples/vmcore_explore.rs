//! Prints tasks and stacks of a dump (development aid).
fn main() {
    let p = std::env::args()
        .nth(1)
        .expect("usage: vmcore_explore DUMP [PID]");
    let pid: Option<i32> = std::env::args().nth(2).and_then(|s| s.parse().ok());
    let v = wedge_vmcore::Vmcore::open(p.as_ref(), &Default::default()).unwrap();
    println!(
        "panic_cpu {:?} current {:x?} cpus {}",
        v.panic_cpu,
        v.cpu_current,
        v.kernel.mem.dump.cpus.len()
    );
    for t in &v.tasks {
        if pid.is_some_and(|p| p != t.pid) {
            continue;
        }
        println!(
            "{} {} {:?} {:?} flags {:x}",
            t.pid, t.comm, t.state, t.sleep, t.flags
        );
        match v.stack(t) {
            Ok(s) => {
                for f in &s.frames {
                    println!(
                        "   {:#x} {}+{:#x}/{:#x}{}",
                        f.addr,
                        f.function.as_deref().unwrap_or("?"),
                        f.offset,
                        f.size,
                        if f.sched { " (sched)" } else { "" }
                    );
                }
                if let Some(e) = s.error {
                    println!("   !! {e}");
                }
            }
            Err(e) => println!("   !! {e}"),
        }
    }
}
