package cli

func runImportUFW(e *env, args []string) int { return ExitUsage }
