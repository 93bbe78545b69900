package volume

import (
	"fmt"
	"path"
	"strings"
)

// Stats counts what Save or Load handled.
type Stats struct {
	Files, Dirs, Symlinks int64
	Bytes                 int64 // of file content
	Skipped               int64 // special files, entries that vanished, other filesystems
}

// FileOptions configure Save and Load.
type FileOptions struct {
	// Jobs is how many files are read (Save) or written (Load) at once;
	// 0 is DefaultJobs.
	Jobs int
	// Warn receives what does not fail the copy: skipped special files,
	// files that vanished or changed while they were read, replaced
	// entries. nil drops them.
	Warn func(string)
}

// DefaultJobs is FileOptions.Jobs when it is 0.
const DefaultJobs = 4

// Validate checks the options.
func (o FileOptions) Validate() error {
	if o.Jobs < 0 {
		return fmt.Errorf("jobs %d: must be at least 1", o.Jobs)
	}
	return nil
}

func (o FileOptions) jobs() int {
	if o.Jobs == 0 {
		return DefaultJobs
	}
	return o.Jobs
}

func (o FileOptions) warn(format string, args ...any) {
	if o.Warn != nil {
		o.Warn(fmt.Sprintf(format, args...))
	}
}

// checkPrefix checks the slash-separated path of a volume in the backup
// tree ("" is the root).
func checkPrefix(p string) error {
	if p == "" {
		return nil
	}
	if strings.HasPrefix(p, "/") || path.Clean(p) != p || p == "." || p == ".." || strings.HasPrefix(p, "../") {
		return fmt.Errorf("invalid path %q in the backup tree", p)
	}
	return nil
}

// checkName checks the name of a directory entry read from a backup: a
// name that could leave its directory is refused.
func checkName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
		return fmt.Errorf("invalid entry name %q in the backup", name)
	}
	return nil
}
