// Package app holds Bunker's use cases as typed functions: back up,
// restore, copy, forget, check, run a plan's job, drill, measure. The
// command line (internal/cli), the daemon, the Kubernetes operator and the
// web UI call them in-process; none of them runs the bunker program to
// perform one.
//
// A use case takes a typed request and returns a typed result and an
// error that keeps its cause (errors.Is and errors.As see through it;
// ExitCode maps it to the program's exit code). What it has to say while
// it works — warnings, notes, progress — goes to the App's Events, which
// the CLI prints, the daemon logs and the operator writes to status.
//
// app sits between the front ends and the layers below: it imports the
// engine, storage, the sources and the plan, and nothing that imports it
// (cli, daemon, operator, web).
package app
