package postgres

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bunkerbackup/bunker/internal/source"
)

// Layout of a logical backup in the snapshot tree.
const (
	LogicalManifest = "postgres/backup.json"
	GlobalsFile     = "postgres/globals.sql"
	databasesDir    = "postgres/databases/"
	logicalFormat   = "bunker-postgres-logical/1"
)

// LogicalManifestData is postgres/backup.json of a logical backup.
type LogicalManifestData struct {
	Format           string        `json:"format"`
	ServerVersion    string        `json:"server_version"`
	SystemIdentifier string        `json:"system_identifier,omitempty"`
	Started          time.Time     `json:"started"`
	Finished         time.Time     `json:"finished"`
	Globals          string        `json:"globals,omitempty"` // path of the pg_dumpall --globals-only output
	Databases        []DatabaseRef `json:"databases"`
}

// DatabaseRef is one database's dump in a logical backup.
type DatabaseRef struct {
	Name string `json:"name"`
	File string `json:"file"` // pg_dump -Fc output
	Size int64  `json:"size"`
}

// LogicalOptions configure a logical backup.
type LogicalOptions struct {
	Databases []string // empty: every database that allows connections
	Jobs      int      // dumps at once (default 1)
	NoGlobals bool     // skip roles and tablespaces
	// Compress is pg_dump's -Z level; 0 (the default) leaves compression
	// to the repository, so unchanged rows deduplicate between backups.
	Compress int
}

// DumpFileName maps a database name to a file name: bytes outside
// [A-Za-z0-9_-] (and a leading dot) become %XX.
func DumpFileName(db string) string {
	var b strings.Builder
	for i := 0; i < len(db); i++ {
		c := db[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.' && i > 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String() + ".dump"
}

// BackupLogical dumps the databases with pg_dump -Fc (at most Jobs at
// once) and the roles and tablespaces with pg_dumpall --globals-only,
// streaming each into the sink. It returns the snapshot metadata.
func (c *Client) BackupLogical(ctx context.Context, sink source.Sink, o LogicalOptions) (map[string]string, error) {
	info, err := c.Info(ctx)
	if err != nil {
		return nil, err
	}
	dbs := info.Databases
	if len(o.Databases) > 0 {
		for _, d := range o.Databases {
			if !slices.Contains(info.Databases, d) {
				return nil, fmt.Errorf("database %q does not exist on %s (or does not allow connections)", d, c.Server())
			}
		}
		dbs = o.Databases
	}
	if len(dbs) == 0 {
		return nil, fmt.Errorf("no database to back up on %s", c.Server())
	}
	m := LogicalManifestData{Format: logicalFormat, ServerVersion: info.Version, SystemIdentifier: info.SystemIdentifier, Started: time.Now().UTC()}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if firstErr == nil {
			firstErr = err
			cancel()
		}
	}
	if !o.NoGlobals {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd, err := c.Tool("pg_dumpall", "--globals-only", "--dbname="+c.DSN("postgres"))
			if err == nil {
				err = cmd.Output(ctx, func(r io.Reader) error {
					_, err := sink.WriteFile(ctx, GlobalsFile, r, nil)
					return err
				})
			}
			if err != nil {
				fail(fmt.Errorf("roles and tablespaces: %w", err))
			}
		}()
		m.Globals = GlobalsFile
	}
	jobs := max(o.Jobs, 1)
	sem := make(chan struct{}, jobs)
	refs := make([]DatabaseRef, len(dbs))
	for i, db := range dbs {
		refs[i] = DatabaseRef{Name: db, File: databasesDir + DumpFileName(db)}
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-sem }()
			cmd, err := c.Tool("pg_dump", "--format=custom", "--compress="+strconv.Itoa(o.Compress), "--dbname="+c.DSN(db))
			if err == nil {
				err = cmd.Output(ctx, func(r io.Reader) error {
					n, err := sink.WriteFile(ctx, refs[i].File, r, nil)
					refs[i].Size = n
					return err
				})
			}
			if err != nil {
				fail(fmt.Errorf("database %s: %w", db, err))
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.Databases = refs
	m.Finished = time.Now().UTC()
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := source.WriteBytes(ctx, sink, LogicalManifest, append(b, '\n'), nil); err != nil {
		return nil, err
	}
	md := Metadata{Type: TypeLogical, Server: c.Server(), ServerVersion: info.Version, Databases: strings.Join(dbs, ",")}
	if info.SystemIdentifier != "" {
		md.SystemIdentifier = info.SystemIdentifier
		md.Timeline = uint32(info.Timeline)
	}
	return md.Map(), nil
}

// ReadLogicalManifest reads and checks postgres/backup.json.
func ReadLogicalManifest(ctx context.Context, t source.Tree) (*LogicalManifestData, error) {
	b, err := source.ReadFile(ctx, t, LogicalManifest)
	if err != nil {
		return nil, err
	}
	return ParseLogicalManifest(b)
}

// ParseLogicalManifest decodes postgres/backup.json.
func ParseLogicalManifest(b []byte) (*LogicalManifestData, error) {
	var m LogicalManifestData
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", LogicalManifest, err)
	}
	if m.Format != logicalFormat {
		return nil, fmt.Errorf("%s: unknown format %q (want %s)", LogicalManifest, m.Format, logicalFormat)
	}
	for i, d := range m.Databases {
		if d.Name == "" || !strings.HasPrefix(d.File, databasesDir) || strings.Contains(d.File, "..") {
			return nil, fmt.Errorf("%s: database entry %d is invalid (name %q, file %q)", LogicalManifest, i, d.Name, d.File)
		}
	}
	if m.Globals != "" && m.Globals != GlobalsFile {
		return nil, fmt.Errorf("%s: unexpected globals file %q", LogicalManifest, m.Globals)
	}
	return &m, nil
}

// RestoreOptions configure a logical restore.
type RestoreOptions struct {
	Databases []string // empty: all in the backup
	Jobs      int      // databases restored at once (default 1)
	// Clean drops each database before recreating it; without it a
	// database that exists on the target fails.
	Clean     bool
	NoGlobals bool
	// NoOwner leaves object ownership to the restoring user
	// (pg_restore --no-owner).
	NoOwner bool
	// Report is called once per database (and "roles" for the globals)
	// with its outcome; nil err is success.
	Report func(name string, err error)
}

// RestoreLogical recreates the databases of a logical backup on the
// server: roles and tablespaces first (psql; "already exists" errors are
// ignored), then each database with pg_restore --create. A database that
// fails is reported and the others go on; the result is an error when any
// failed.
func (c *Client) RestoreLogical(ctx context.Context, t source.Tree, o RestoreOptions) error {
	m, err := ReadLogicalManifest(ctx, t)
	if err != nil {
		return err
	}
	dbs := m.Databases
	if len(o.Databases) > 0 {
		dbs = nil
		for _, name := range o.Databases {
			i := slices.IndexFunc(m.Databases, func(d DatabaseRef) bool { return d.Name == name })
			if i < 0 {
				return fmt.Errorf("database %q is not in the backup", name)
			}
			dbs = append(dbs, m.Databases[i])
		}
	}
	report := o.Report
	if report == nil {
		report = func(string, error) {}
	}
	failed := 0
	if m.Globals != "" && !o.NoGlobals {
		if err := c.restoreGlobals(ctx, t, m.Globals); err != nil {
			failed++
			report("roles", err)
		} else {
			report("roles", nil)
		}
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	sem := make(chan struct{}, max(o.Jobs, 1))
	for _, d := range dbs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-sem }()
			err := c.restoreDatabase(ctx, t, d, o)
			mu.Lock()
			if err != nil {
				failed++
			}
			mu.Unlock()
			report(d.Name, err)
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	if failed > 0 {
		return &PartialError{Failed: failed}
	}
	return nil
}

// PartialError says that some parts of a restore failed (each was
// reported).
type PartialError struct{ Failed int }

func (e *PartialError) Error() string {
	return fmt.Sprintf("%d part(s) of the restore failed", e.Failed)
}

func (c *Client) restoreDatabase(ctx context.Context, t source.Tree, d DatabaseRef, o RestoreOptions) error {
	exists, err := c.databaseExists(ctx, d.Name)
	if err != nil {
		return err
	}
	args := []string{"--exit-on-error"}
	switch {
	case !exists:
		args = append(args, "--create", "--dbname="+c.DSN("postgres"))
	case d.Name == "postgres" || d.Name == "template1":
		// Every cluster has them: restore into it (dropping what the
		// dump has first with --clean).
		args = append(args, "--dbname="+c.DSN(d.Name))
		if o.Clean {
			args = append(args, "--clean", "--if-exists")
		}
	case o.Clean:
		args = append(args, "--create", "--clean", "--if-exists", "--dbname="+c.DSN("postgres"))
	default:
		return fmt.Errorf("database %s already exists on %s (--clean drops and recreates it)", d.Name, c.Server())
	}
	if o.NoOwner {
		args = append(args, "--no-owner")
	}
	rc, err := t.Open(ctx, d.File)
	if err != nil {
		return err
	}
	defer rc.Close()
	cmd, err := c.Tool("pg_restore", args...)
	if err != nil {
		return err
	}
	cmd.Stdin = rc
	return cmd.Run(ctx)
}

func (c *Client) databaseExists(ctx context.Context, name string) (bool, error) {
	conn, err := c.Connect(ctx, "postgres")
	if err != nil {
		return false, err
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_database WHERE datname = $1", name).Scan(&n); err != nil {
		return false, fmt.Errorf("look up database %s: %w", name, err)
	}
	return n > 0, nil
}

// restoreGlobals runs the roles and tablespaces script through psql. The
// script creates roles that may exist on the target (at least the one
// restoring): those errors are expected; any other is a failure.
func (c *Client) restoreGlobals(ctx context.Context, t source.Tree, p string) error {
	rc, err := t.Open(ctx, p)
	if err != nil {
		return err
	}
	defer rc.Close()
	cmd, err := c.Tool("psql", "-X", "-q", "--no-psqlrc", "-v", "ON_ERROR_STOP=0", "--dbname="+c.DSN("postgres"), "-f", "-")
	if err != nil {
		return err
	}
	cmd.Stdin = rc
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	var unexpected []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line := sc.Text()
			if strings.Contains(line, "ERROR:") && !strings.Contains(line, "already exists") {
				unexpected = append(unexpected, strings.TrimSpace(line))
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	err = cmd.Run(ctx)
	pw.Close()
	<-done
	if err != nil {
		return err
	}
	if len(unexpected) > 0 {
		return fmt.Errorf("roles and tablespaces: %s", strings.Join(unexpected, "; "))
	}
	return nil
}
