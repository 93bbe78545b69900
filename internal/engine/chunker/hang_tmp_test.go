package chunker

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"testing"
	"time"
)

func FuzzTmp(f *testing.F) {
	f.Add([]byte{}, uint16(0))
	f.Add(make([]byte, 3000), uint16(7))
	f.Add(randomBytes("fuzz", 5000), uint16(100))
	f.Add(pgbenchDump(5000), uint16(3))
	f.Add(allByteRuns(300), uint16(0))
	p := smallParams(testSeed())
	tab := NewTable(p.Seed)
	f.Fuzz(func(t *testing.T, data []byte, split uint16) {
		tm := time.AfterFunc(3*time.Second, func() {
			os.WriteFile("/tmp/hang_input.bin", data, 0o644)
			os.WriteFile("/tmp/hang_split.txt", []byte(fmt.Sprint(split)), 0o644)
			panic("hang")
		})
		defer tm.Stop()
		var rd io.Reader = bytes.NewReader(data)
		if split > 0 {
			rd = &splitReader{r: rd, sizes: []int{int(split % 97), int(split>>7) + 1, int(split % 13)}}
		}
		c := NewWithTable(rd, p, tab)
		var buf []byte
		for {
			var err error
			buf, err = c.Next(buf)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("Next: %v", err)
			}
		}
		refChunkLens(tab, p, data)
	})
}
