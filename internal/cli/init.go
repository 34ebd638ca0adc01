package cli

func runInit(e *env, args []string) int { return ExitRuntime }
