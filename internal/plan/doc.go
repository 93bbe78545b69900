// Package plan reads backup plan files: repositories with their 3-2-1
// traits, jobs with sources, schedules, copies, retention, hooks and
// RPO/RTO objectives, restore drills and notifications.
//
// Parsing is strict and positional: an unknown key, a wrong type, a
// dangling reference or a secret written in clear is an Error with
// file:line:column and, where one helps, a hint ("did you mean …?").
// Secrets (repository passwords, database DSNs, tokens) are references
// (env:NAME, file:/path, command:CMD) resolved only when used, so a plan
// can be printed and shared. ${NAME} in any value is replaced from the
// environment at load time.
package plan
