//! The `saddle` command: the allocator and the entry point; the command
//! itself is the crate's library target (`lib.rs`).

/// Large blocks backed by huge pages (`saddle::memory`).
#[global_allocator]
static ALLOCATOR: saddle::memory::HugePages = saddle::memory::HugePages;

fn main() -> std::process::ExitCode {
    saddle_cli::main()
}
