//go:build !unix

package local

import "os"

// repoPerms: without Unix owners and modes there is nothing to follow.
func repoPerms(string) perms { return defaultPerms }

// chown does nothing: there are no Unix owners.
func (perms) chown(*os.File, string) error { return nil }

// denied maps the error; there are no Unix owners to name.
func denied(_, _, _ string, err error) error { return mapErr(err) }
