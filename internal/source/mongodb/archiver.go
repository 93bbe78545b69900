package mongodb

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bunkerbackup/bunker/internal/source"
)

// ArchiveOptions configure ArchiveOplog.
type ArchiveOptions struct {
	// ChunkEnd and BackupEnd are where the archive and the newest backup
	// end (see ArchiveResume); nil when there is none.
	ChunkEnd, BackupEnd *Timestamp
	// Interval is how often what arrived is committed (at least 1 s).
	Interval time.Duration
	// Once archives what the oplog has now and returns.
	Once bool
	// MaxChunk bounds one chunk, held in memory (default 64 MiB).
	MaxChunk int
	// Commit stores one chunk: a snapshot holding data as
	// ChunkFile(ci.Start), with the metadata ci.Map().
	Commit func(ctx context.Context, data []byte, ci ChunkInfo) error
	// Log and Warn receive progress and warnings (nil: none).
	Log, Warn func(format string, args ...any)
}

// WriteChunk adds a chunk's file to a snapshot and returns its metadata.
func WriteChunk(ctx context.Context, sink source.Sink, data []byte, ci ChunkInfo) (map[string]string, error) {
	if err := source.WriteBytes(ctx, sink, ChunkFile(ci.Start), data, nil); err != nil {
		return nil, err
	}
	return ci.Map(), nil
}

// ArchiveOplog tails the oplog after where the archive ends (else after
// the newest backup's end, else from the oldest entry) and commits what
// arrives every Interval, until ctx ends (or, with Once, until it has
// caught up). When the oplog rolled over past the archive's end but a
// newer backup can be continued from, it warns and continues from there:
// point-in-time restores between the two are lost, later ones are not.
func (c *Client) ArchiveOplog(ctx context.Context, o ArchiveOptions) error {
	if o.Interval < time.Second {
		return fmt.Errorf("--interval %v is too short (at least 1s)", o.Interval)
	}
	if o.MaxChunk == 0 {
		o.MaxChunk = 64 << 20
	}
	logf := func(f func(string, ...any), format string, args ...any) {
		if f != nil {
			f(format, args...)
		}
	}
	after := o.ChunkEnd
	if after == nil {
		after = o.BackupEnd
	}
	tail := func(after *Timestamp) (*Tailer, error) {
		if after != nil {
			logf(o.Log, "archiving the oplog after %s", FormatTimestamp(*after))
		} else {
			logf(o.Log, "archiving the oplog from its oldest entry")
		}
		return c.TailOplog(after, !o.Once)
	}
	tl, err := tail(after)
	if err != nil {
		return err
	}
	defer func() { tl.Close(context.WithoutCancel(ctx)) }()
	hosts := c.cfg.Hosts()
	for {
		data, ci, err := tl.Collect(ctx, time.Now().Add(o.Interval), o.MaxChunk)
		if errors.Is(err, ErrOplogGap) && after == o.ChunkEnd && o.BackupEnd != nil && o.BackupEnd.After(*o.ChunkEnd) {
			logf(o.Warn, "%v; continuing after the newest backup's end %s instead", err, FormatTimestamp(*o.BackupEnd))
			tl.Close(ctx)
			after = o.BackupEnd
			if tl, err = tail(after); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		if data != nil {
			ci.Topology, ci.ReplicaSet, ci.Hosts = c.Info.Topology, c.Info.SetName, hosts
			if err := o.Commit(ctx, data, ci); err != nil {
				return err
			}
		}
		if o.Once && len(data) < o.MaxChunk {
			return nil
		}
	}
}
