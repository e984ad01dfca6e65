fn main() {
    std::process::exit(orch_tui::cli::main());
}
