package cli

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"

	"github.com/bunkerbackup/bunker/internal/engine/pack"
	"github.com/bunkerbackup/bunker/internal/engine/repository"
	"github.com/bunkerbackup/bunker/internal/engine/restorer"
	"github.com/bunkerbackup/bunker/internal/engine/tree"
	"github.com/bunkerbackup/bunker/internal/engine/walker"
	"github.com/spf13/cobra"
)

func (a *App) dumpCommand() *cobra.Command {
	var ff snapshotFilterFlags
	cmd := &cobra.Command{
		Use:               "dump SNAPSHOT PATH",
		Short:             "Write a file from a snapshot to stdout (a directory as tar)",
		Args:              cobra.ExactArgs(2),
		ValidArgsFunction: a.completeSnapshots(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			r, err := a.openRepoIndexed(ctx)
			if err != nil {
				return err
			}
			sn, err := a.findSnapshot(ctx, r, args[0], ff.filter())
			if err != nil {
				return err
			}
			p := path.Clean("/" + args[1])
			node, err := restorer.FindNode(ctx, r, sn.Tree, p)
			if err != nil {
				return err
			}
			switch node.Type {
			case tree.TypeFile:
				return writeContent(ctx, r, node, a.Stdout)
			case tree.TypeDir:
				tw := tar.NewWriter(a.Stdout)
				base := strings.TrimPrefix(p, "/")
				err := walker.Walk(ctx, r, *node.Subtree, base, func(np string, n *tree.Node) error {
					hdr := &tar.Header{Name: strings.TrimPrefix(np, "/"), Mode: int64(fs.FileMode(n.Mode).Perm()), ModTime: n.ModTime, Uid: int(n.UID), Gid: int(n.GID),
						Uname: n.User, Gname: n.Group, Format: tar.FormatPAX}
					if fs.FileMode(n.Mode)&fs.ModeSetuid != 0 {
						hdr.Mode |= 0o4000
					}
					if fs.FileMode(n.Mode)&fs.ModeSetgid != 0 {
						hdr.Mode |= 0o2000
					}
					if fs.FileMode(n.Mode)&fs.ModeSticky != 0 {
						hdr.Mode |= 0o1000
					}
					switch n.Type {
					case tree.TypeFile:
						hdr.Typeflag, hdr.Size = tar.TypeReg, int64(n.Size)
					case tree.TypeDir:
						hdr.Typeflag = tar.TypeDir
						hdr.Name += "/"
					case tree.TypeSymlink:
						hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, string(n.LinkTarget)
					case tree.TypeFIFO:
						hdr.Typeflag = tar.TypeFifo
					case tree.TypeCharDev, tree.TypeDev:
						hdr.Typeflag = tar.TypeChar
						if n.Type == tree.TypeDev {
							hdr.Typeflag = tar.TypeBlock
						}
						hdr.Devmajor, hdr.Devminor = int64((n.Device>>8)&0xfff|(n.Device>>32)&^0xfff), int64(n.Device&0xff|(n.Device>>12)&^0xff)
					default:
						return nil
					}
					if len(n.Xattrs) > 0 {
						hdr.PAXRecords = map[string]string{}
						for _, x := range n.Xattrs {
							hdr.PAXRecords["SCHILY.xattr."+string(x.Name)] = string(x.Value)
						}
					}
					if err := tw.WriteHeader(hdr); err != nil {
						return err
					}
					if n.Type == tree.TypeFile {
						return writeContent(ctx, r, n, tw)
					}
					return nil
				})
				if err != nil {
					return err
				}
				return tw.Close()
			default:
				return fmt.Errorf("%s is a %s, not a file or directory", p, node.Type)
			}
		},
	}
	addFilterFlags(cmd, &ff)
	return cmd
}

func writeContent(ctx context.Context, r *repository.Repository, n *tree.Node, w io.Writer) error {
	var buf []byte
	var err error
	for _, id := range n.Content {
		buf, err = r.LoadBlob(ctx, pack.DataBlob, id, buf)
		if err != nil {
			return err
		}
		if _, err := w.Write(buf); err != nil {
			return err
		}
	}
	return nil
}
