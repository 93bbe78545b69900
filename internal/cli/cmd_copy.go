package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/bunkerbackup/bunker/internal/engine/pack"
	"github.com/bunkerbackup/bunker/internal/engine/repository"
	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
	"github.com/bunkerbackup/bunker/internal/engine/tree"
	"github.com/bunkerbackup/bunker/internal/engine/walker"
	"github.com/spf13/cobra"
)

func (a *App) copyCommand() *cobra.Command {
	var ff snapshotFilterFlags
	var from, fromPwFile string
	cmd := &cobra.Command{
		Use:   "copy --from-repo OTHER [SNAPSHOT...]",
		Short: "Copy snapshots from another repository into this one",
		Long: `Copy snapshots (all, or the named ones) from --from-repo into the repository
of -r. Only blobs the target lacks are transferred. Snapshots already copied
are skipped. The source password comes from --from-password-file or
BUNKER_FROM_PASSWORD.

When both repositories share chunker and ID keys (init
--copy-chunker-params-from), blobs keep their IDs and are checked against the
target index without being read; otherwise every blob is read and re-hashed
with the target's key, and only those the target lacks are stored.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if from == "" {
				return errors.New("--from-repo is required")
			}
			pw := a.Getenv("BUNKER_FROM_PASSWORD")
			if fromPwFile != "" {
				b, err := os.ReadFile(fromPwFile)
				if err != nil {
					return err
				}
				pw = strings.TrimRight(string(b), "\r\n")
			}
			if pw == "" {
				return errors.New("no source password: use --from-password-file or BUNKER_FROM_PASSWORD")
			}
			src, err := a.openRepoAt(ctx, from, pw)
			if err != nil {
				return fmt.Errorf("source: %w", err)
			}
			if err := src.LoadIndex(ctx, false); err != nil {
				return err
			}
			dst, err := a.openRepo(ctx)
			if err != nil {
				return fmt.Errorf("target: %w", err)
			}
			sess, _, err := dst.BeginWrite(ctx, "copy")
			if err != nil {
				return err
			}
			defer sess.End(context.Background())
			srcAll, _, err := snapshot.LoadAll(ctx, src)
			if err != nil {
				return err
			}
			dstAll, _, err := snapshot.LoadAll(ctx, dst)
			if err != nil {
				return err
			}
			have := map[string]bool{}
			for _, sn := range dstAll {
				if sn.Original != nil {
					have[sn.Original.String()] = true
				}
				have[sn.ID.String()] = true
			}
			list := ff.filter().Apply(srcAll)
			if len(args) > 0 {
				list = nil
				for _, ref := range args {
					sn, err := snapshot.Find(srcAll, ref, ff.filter())
					if err != nil {
						return err
					}
					list = append(list, sn)
				}
			}
			sameKeys := bytes.Equal(src.Config().IDKey, dst.Config().IDKey)
			c := &copier{ctx: ctx, src: src, dst: dst, same: sameKeys, memo: map[tree.ID]tree.ID{}}
			copied := 0
			start := time.Now()
			for _, sn := range list {
				orig := sn.ID
				if sn.Original != nil {
					orig = *sn.Original
				}
				if have[orig.String()] || have[sn.ID.String()] {
					a.out.infof("snapshot %s already in the target", sn.ShortID())
					continue
				}
				root, err := c.tree(sn.Tree)
				if err != nil {
					return fmt.Errorf("copy snapshot %s: %w", sn.ShortID(), err)
				}
				nsn := *sn
				nsn.Tree = root
				nsn.Original = &orig
				if _, err := sess.CommitAndContinue(ctx, &nsn); err != nil {
					return fmt.Errorf("copy snapshot %s: %w", sn.ShortID(), err)
				}
				copied++
				a.out.textf("snapshot %s copied as %s", sn.ShortID(), nsn.ShortID())
			}
			ws := dst.Stats()
			if a.g.json {
				a.out.jsonLine(map[string]any{"message_type": "summary", "snapshots_copied": copied, "blobs_added": ws.Blobs, "bytes_added": ws.BlobBytes,
					"bytes_stored": ws.StoredBytes, "duration_seconds": time.Since(start).Seconds()})
			} else {
				a.out.textf("copied %d snapshots: %d new blobs, %s (%s stored)", copied, ws.Blobs, formatBytes(ws.BlobBytes), formatBytes(ws.StoredBytes))
			}
			return nil
		},
	}
	addFilterFlags(cmd, &ff)
	cmd.Flags().StringVar(&from, "from-repo", "", "source repository")
	cmd.Flags().StringVar(&fromPwFile, "from-password-file", "", "file holding the source password")
	return cmd
}

type copier struct {
	ctx      context.Context
	src, dst *repository.Repository
	same     bool
	memo     map[tree.ID]tree.ID // source ID -> target ID (data and trees)
	buf      []byte
}

func (c *copier) blob(id tree.ID) (tree.ID, error) {
	if nid, ok := c.memo[id]; ok {
		return nid, nil
	}
	if c.same && c.dst.Index().Has(id, pack.DataBlob) {
		c.dst.NoteReuse(id, pack.DataBlob)
		c.memo[id] = id
		return id, nil
	}
	var err error
	c.buf, err = c.src.LoadBlob(c.ctx, pack.DataBlob, id, c.buf)
	if err != nil {
		return id, err
	}
	nid, _, err := c.dst.SaveBlob(c.ctx, pack.DataBlob, c.buf)
	if err != nil {
		return id, err
	}
	c.memo[id] = nid
	return nid, nil
}

func (c *copier) tree(id tree.ID) (tree.ID, error) {
	if nid, ok := c.memo[id]; ok {
		return nid, nil
	}
	if c.same && c.dst.Index().Has(id, pack.TreeBlob) {
		// The whole subtree is there already (trees are saved after their
		// children), but note reuse for the commit check.
		c.dst.NoteReuse(id, pack.TreeBlob)
		c.memo[id] = id
		return id, nil
	}
	t, err := walker.LoadTree(c.ctx, c.src, id)
	if err != nil {
		return id, err
	}
	for _, n := range t.Nodes {
		for i, b := range n.Content {
			if n.Content[i], err = c.blob(b); err != nil {
				return id, err
			}
		}
		if n.Subtree != nil {
			sub, err := c.tree(*n.Subtree)
			if err != nil {
				return id, err
			}
			n.Subtree = &sub
		}
	}
	nid, err := saveTree(c.ctx, c.dst, t, false)
	if err != nil {
		return id, err
	}
	c.memo[id] = nid
	return nid, nil
}
