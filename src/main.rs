fn main() -> std::process::ExitCode {
    followup_bot::cli::main()
}
