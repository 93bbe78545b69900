package cli

func (a *App) mongodbCommands() sourceCommands { return sourceCommands{} }
