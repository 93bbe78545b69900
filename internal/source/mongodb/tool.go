package mongodb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/bunkerbackup/bunker/internal/source"
)

// Tools are mongodump and mongorestore, for backups stored as one
// mongodump archive.
type Tools struct {
	// Mongodump and Mongorestore are the programs' paths.
	Mongodump, Mongorestore string
	// Env is added to the programs' environment (PATH, say).
	Env []string
	// TempDir holds the 0600 configuration file with the password
	// (default os.TempDir()).
	TempDir string
	// Stderr, when set, also gets the programs' standard error.
	Stderr io.Writer
}

// yamlString quotes s for YAML: a JSON string is a valid YAML
// double-quoted scalar.
func yamlString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// writeToolConfig writes the secrets of cfg into a 0600 YAML file for the
// tools' --config and returns its path, or "" when there are none.
// remove deletes the file.
func writeToolConfig(dir string, cfg Config) (path string, remove func(), err error) {
	var lines []string
	if pw, ok := cfg.password(); ok {
		lines = append(lines, "password: "+yamlString(pw))
	}
	if kp, ok := cfg.keyPassword(); ok {
		lines = append(lines, "sslPEMKeyPassword: "+yamlString(kp))
	}
	if len(lines) == 0 {
		return "", func() {}, nil
	}
	f, err := os.CreateTemp(dir, "bunker-mongodb-*.yaml")
	if err != nil {
		return "", nil, fmt.Errorf("tool configuration file: %w", err)
	}
	remove = func() { _ = os.Remove(f.Name()) }
	// CreateTemp makes the file 0600; say so anyway, before the secret.
	err = f.Chmod(0o600)
	if err == nil {
		_, err = f.WriteString(strings.Join(lines, "\n") + "\n")
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		remove()
		return "", nil, fmt.Errorf("tool configuration file: %w", err)
	}
	return f.Name(), remove, nil
}

// connArgs are the connection arguments of both tools: the URI without
// secrets, and the configuration file with them.
func connArgs(cfg Config, conf string) []string {
	args := []string{"--uri=" + cfg.Public()}
	if conf != "" {
		args = append(args, "--config="+conf)
	}
	return args
}

// dumpArgs maps a selection to mongodump's arguments: one database, or one
// collection, and excluded collections of that database.
func dumpArgs(sel *Selector, jobs int, oplog bool) ([]string, error) {
	args := []string{"--archive"}
	db := ""
	switch {
	case len(sel.Databases)+len(sel.Collections) > 1:
		return nil, errors.New("with --tool mongodump, name at most one --db or --collection")
	case len(sel.Databases) == 1:
		db = sel.Databases[0]
		args = append(args, "--db="+db)
	case len(sel.Collections) == 1:
		d, c, err := SplitNamespace(sel.Collections[0])
		if err != nil {
			return nil, err
		}
		db = d
		args = append(args, "--db="+d, "--collection="+c)
	}
	for _, p := range sel.Exclude {
		d, c, err := SplitNamespace(p.String())
		if err != nil || db == "" || d != db || strings.ContainsAny(p.String(), `*\`) {
			return nil, fmt.Errorf("with --tool mongodump, --exclude takes only DB.COLLECTION of the --db given (not %q)", p)
		}
		args = append(args, "--excludeCollection="+c)
	}
	if len(sel.Include) > 0 {
		return nil, errors.New("with --tool mongodump, collections are chosen with --db and --collection only")
	}
	if oplog {
		if db != "" {
			return nil, errors.New("mongodump's --oplog dumps every database: give no --db or --collection with it (or --oplog=false)")
		}
		args = append(args, "--oplog")
	}
	if jobs > 0 {
		args = append(args, "--numParallelCollections="+strconv.Itoa(jobs))
	}
	return args, nil
}

// DumpArchive runs mongodump --archive and streams its output into sink as
// Root/ArchiveFile, next to backup.json. The client is used for the
// server's facts only.
func (c *Client) DumpArchive(ctx context.Context, tools Tools, sink source.Sink, o DumpOptions) (*BackupInfo, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.Oplog && c.Info.Topology != ReplicaSet {
		return nil, fmt.Errorf("--oplog needs a replica set: this server is %s and has no oplog", c.Info.Topology)
	}
	if o.Users {
		return nil, errors.New("--users is not for --tool mongodump: mongodump dumps admin's users with the admin database")
	}
	args, err := dumpArgs(&o.Select, o.Jobs, o.Oplog)
	if err != nil {
		return nil, err
	}
	conf, remove, err := writeToolConfig(tools.TempDir, c.cfg)
	if err != nil {
		return nil, err
	}
	defer remove()
	info := &BackupInfo{Format: Format, Version: FormatVersion, Tool: "mongodump", ServerVersion: c.Info.Version,
		Topology: c.Info.Topology, ReplicaSet: c.Info.SetName, Hosts: c.Info.Hosts, Start: time.Now().UTC()}
	cmd := &source.Command{Path: tools.Mongodump, Args: append(args, connArgs(c.cfg, conf)...), Env: tools.Env, Stderr: tools.Stderr}
	var size int64
	err = cmd.Output(ctx, func(r io.Reader) error {
		n, err := sink.WriteFile(ctx, Root+"/"+ArchiveFile, r, nil)
		size = n
		return err
	})
	if err != nil {
		return nil, &scrubbedError{msg: c.cfg.scrub(err.Error()), err: err}
	}
	if size == 0 {
		return nil, errors.New("mongodump wrote nothing")
	}
	if err := writeInfo(ctx, sink, info); err != nil {
		return nil, err
	}
	return info, nil
}

// ArchiveRestoreOptions are mongorestore's options for an archive.
type ArchiveRestoreOptions struct {
	// Include, Exclude and the From/To pairs are mongorestore's namespace
	// patterns, passed on as given.
	Include, Exclude []string
	From, To         []string
	Drop             bool
	Jobs             int
	OplogReplay      bool
	OplogLimit       *Timestamp
}

// ArchiveOptions are mongorestore's options for what o asks of a
// restore: its namespace patterns as given, its renamings, drop, jobs
// and oplog replay.
func (o *RestoreOptions) ArchiveOptions() ArchiveRestoreOptions {
	ao := ArchiveRestoreOptions{Drop: o.Drop, Jobs: o.Jobs, OplogReplay: o.OplogReplay, OplogLimit: o.OplogLimit}
	for _, p := range o.Select.Include {
		ao.Include = append(ao.Include, p.String())
	}
	for _, p := range o.Select.Exclude {
		ao.Exclude = append(ao.Exclude, p.String())
	}
	for _, r := range o.Renames {
		from, to := r.Patterns()
		ao.From, ao.To = append(ao.From, from), append(ao.To, to)
	}
	return ao
}

// RestoreArchive feeds Root/ArchiveFile of t to mongorestore --archive.
func RestoreArchive(ctx context.Context, tools Tools, cfg Config, t source.Tree, o ArchiveRestoreOptions) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if len(o.From) != len(o.To) {
		return errors.New("--ns-from and --ns-to must come in pairs")
	}
	args := []string{"--archive"}
	for _, p := range o.Include {
		args = append(args, "--nsInclude="+mongoPattern(p))
	}
	for _, p := range o.Exclude {
		args = append(args, "--nsExclude="+mongoPattern(p))
	}
	for i := range o.From {
		args = append(args, "--nsFrom="+mongoPattern(o.From[i]), "--nsTo="+mongoPattern(o.To[i]))
	}
	if o.Drop {
		args = append(args, "--drop")
	}
	if o.Jobs > 0 {
		args = append(args, "--numParallelCollections="+strconv.Itoa(o.Jobs))
	}
	if o.OplogReplay {
		args = append(args, "--oplogReplay")
	}
	if o.OplogLimit != nil {
		args = append(args, "--oplogLimit="+FormatTimestamp(*o.OplogLimit))
	}
	conf, remove, err := writeToolConfig(tools.TempDir, cfg)
	if err != nil {
		return err
	}
	defer remove()
	rc, err := t.Open(ctx, Root+"/"+ArchiveFile)
	if err != nil {
		return fmt.Errorf("open %s: %w", ArchiveFile, err)
	}
	defer rc.Close()
	cmd := &source.Command{Path: tools.Mongorestore, Args: append(args, connArgs(cfg, conf)...), Env: tools.Env,
		Stdin: rc, Stderr: tools.Stderr}
	if err := cmd.Run(ctx); err != nil {
		return &scrubbedError{msg: cfg.scrub(err.Error()), err: err}
	}
	return nil
}

// mongoPattern turns our shorthand "db" (a whole database) into
// mongorestore's "db.*".
func mongoPattern(p string) string {
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '\\':
			i++
		case '.':
			return p
		}
	}
	return p + ".*"
}

// LookPath finds a MongoDB tool in dir when given, else in the
// directories of path (a PATH value: the caller's environment, not this
// process's), with source.LookToolOnPath.
func LookPath(name, dir, path string) (string, error) {
	p, err := source.LookToolOnPath(name, dir, path)
	if err != nil && dir == "" {
		return "", fmt.Errorf("%s not found on PATH: install the MongoDB Database Tools or give their directory (--tool-dir)", name)
	}
	return p, err
}
