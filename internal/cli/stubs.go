package cli

func runAudit(e *env, args []string) int { return ExitRuntime }
func runInit(e *env, args []string) int  { return ExitRuntime }
