package cli

func (a *App) mysqlCommands() sourceCommands { return sourceCommands{} }
