// Package cli is Bunker's command line: one file per command, flags in,
// engine calls out. Everything hangs off an App built by Main, so commands
// can run in-process in tests with their own stdin, stdout, stderr and
// environment; there is no global state.
//
// Exit codes (stable, documented in --help):
//
//	0   success
//	1   error
//	3   backup finished, but some source files could not be read
//	10  repository does not exist
//	11  repository is of a newer format than this bunker
//	12  wrong password
//	130 interrupted (SIGINT/SIGTERM)
package cli
