package app

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"strings"
	"time"

	"github.com/bunkerbackup/bunker/internal/source/kube"
	"github.com/bunkerbackup/bunker/internal/source/mongodb"
	"github.com/bunkerbackup/bunker/internal/source/mysql"
	"github.com/bunkerbackup/bunker/internal/source/postgres"
	"github.com/bunkerbackup/bunker/internal/timespec"
)

// MongoPatterns parses namespace patterns (DB.COLLECTION, * matches
// anything; a bare DB is DB.*) given with flag.
func MongoPatterns(flag string, in []string) ([]*mongodb.Pattern, error) {
	var out []*mongodb.Pattern
	for _, s := range in {
		p, err := mongodb.ParsePattern(s)
		if err != nil {
			return nil, fmt.Errorf("--%s: %w", flag, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// MongoRestoreArgs are a MongoDB restore's namespace choices and target
// as the user writes them, mongorestore's way.
type MongoRestoreArgs struct {
	// Include and Exclude are patterns; From and To rename, in pairs.
	Include, Exclude, From, To []string
	// OplogLimit is TS (SECONDS[:ORDINAL]) or an RFC 3339 time; "" means
	// none.
	OplogLimit string
}

// Apply parses the choices into o; a limit implies replaying the oplog.
func (m MongoRestoreArgs) Apply(o *mongodb.RestoreOptions) error {
	if len(m.From) != len(m.To) {
		return errors.New("--ns-from and --ns-to must come in pairs")
	}
	var err error
	if o.Select.Include, err = MongoPatterns("ns-include", m.Include); err != nil {
		return err
	}
	if o.Select.Exclude, err = MongoPatterns("ns-exclude", m.Exclude); err != nil {
		return err
	}
	o.Renames = nil
	for i := range m.From {
		rn, err := mongodb.ParseRename(m.From[i], m.To[i])
		if err != nil {
			return fmt.Errorf("--ns-from/--ns-to: %w", err)
		}
		o.Renames = append(o.Renames, rn)
	}
	if m.OplogLimit != "" {
		ts, err := mongodb.ParseLimit(m.OplogLimit)
		if err != nil {
			return fmt.Errorf("--oplog-limit: %w", err)
		}
		o.OplogLimit, o.OplogReplay = &ts, true
	}
	return nil
}

// PostgresRestoreArgs are the choices of a PostgreSQL restore that are
// written as text: the Kubernetes service whose database backup to
// restore (NAMESPACE/SERVICE) and the recovery target time.
type PostgresRestoreArgs struct {
	FromKubernetes, TargetTime string
}

// Apply checks, the flags' way, what in req does not go together,
// parses the args into it and clears the options of the other kind of
// restore (the flags give them defaults).
func (p PostgresRestoreArgs) Apply(req *PostgresRestore) error {
	po := &req.PhysicalOptions
	if t := po.Target; !req.Physical {
		if po.PGData != "" || p.TargetTime != "" || t.LSN != "" || t.XID != "" || t.Name != "" || t.Latest {
			return errors.New("--pgdata and --target-* need --physical (point-in-time restores start from a base backup)")
		}
		*po = PostgresPhysicalOptions{}
		if p.FromKubernetes == "" {
			return nil
		}
		ns, svc, ok := strings.Cut(p.FromKubernetes, "/")
		if !ok || ns == "" || svc == "" || strings.Contains(svc, "/") {
			return fmt.Errorf("--from-kubernetes %q: want NAMESPACE/SERVICE", p.FromKubernetes)
		}
		req.FromKubernetes = &kube.Database{Namespace: ns, Service: svc}
		return nil
	}
	switch {
	case po.PGData == "":
		return errors.New("--physical needs --pgdata DIR")
	case len(req.Logical.Databases) > 0 || req.Logical.Clean:
		return errors.New("--database and --clean are for logical restores")
	}
	req.Logical = postgres.RestoreOptions{}
	if p.TargetTime != "" {
		var err error
		if po.Target.Time, err = timespec.ParseTime(p.TargetTime); err != nil {
			return fmt.Errorf("--target-time: %w", err)
		}
	}
	return nil
}

// MySQLRestoreArgs are the choices of a MySQL restore that are written
// as text: the point in time to roll forward to (a time or FILE:POS).
type MySQLRestoreArgs struct {
	TargetTime, TargetPosition string
	// OwnerSet says that the owner of a physical restore was chosen;
	// else, run as root, it is mysql when that user exists.
	OwnerSet bool
}

// Apply checks, the flags' way, what in req does not go together,
// parses the args into it, clears the options of the other kind of
// restore (the flags give them defaults) and, for a logical restore,
// resolves the server of conn in the environment getenv.
func (m MySQLRestoreArgs) Apply(req *MySQLRestore, conn MySQLConn, getenv func(string) string) error {
	po := &req.PhysicalOptions
	if req.Physical {
		if m.TargetTime != "" || m.TargetPosition != "" {
			return errors.New("a physical restore prepares a data directory; roll it forward by hand (see the output) — leave out --target-time/--target-position")
		}
		if !m.OwnerSet && os.Geteuid() == 0 {
			if _, err := user.Lookup("mysql"); err == nil {
				po.Owner = "mysql"
			}
		}
		po.ToolDir, req.Options = conn.ToolDir, mysql.RestoreOptions{}
		return nil
	}
	if po.DataDir != "" {
		return errors.New("--datadir goes with --physical")
	}
	*po = mysql.PhysicalRestoreOptions{}
	var t time.Time
	if m.TargetTime != "" {
		var err error
		if t, err = timespec.ParseTime(m.TargetTime); err != nil {
			return fmt.Errorf("--target-time: %w", err)
		}
	}
	var err error
	if req.Options.Target, err = mysql.NewTarget(t, m.TargetPosition); err != nil {
		return err
	}
	req.Server, err = conn.Options(getenv)
	return err
}

// MongoBackupArgs are the choices of a MongoDB backup that are written
// as text: the namespaces to skip and the dump tool.
type MongoBackupArgs struct {
	Exclude []string
	// Tool is "" or "driver" (the Go driver) or "mongodump", found in
	// ToolDir, else on the PATH.
	Tool, ToolDir string
}

// Apply parses the args into b and checks its options, so that a bad
// flag fails before the repository is opened. mongodump is looked up in
// the environment getenv; its standard error goes to stderr.
func (m MongoBackupArgs) Apply(b *MongoBackup, getenv func(string) string, stderr io.Writer) error {
	var err error
	if b.Options.Select.Exclude, err = MongoPatterns("exclude", m.Exclude); err != nil {
		return err
	}
	check := b.Options
	if err := check.Validate(); err != nil {
		return err
	}
	switch m.Tool {
	case "", "driver":
	case "mongodump":
		b.Tools, err = mongoTools(m.ToolDir, getenv, stderr)
	default:
		err = fmt.Errorf("--tool %q: the only tool is mongodump", m.Tool)
	}
	return err
}
