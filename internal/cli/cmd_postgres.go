package cli

func (a *App) postgresCommands() sourceCommands { return sourceCommands{} }
