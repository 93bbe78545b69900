package chunker_test

import (
	"bytes"
	"fmt"
	"io"
	"log"

	"github.com/bunkerbackup/bunker/internal/engine/chunker"
)

func ExampleChunker() {
	var seed [32]byte // in a repository: derived from the master key
	p := chunker.DefaultParams(seed)
	tab := chunker.NewTable(seed) // derive once, share between Chunkers

	c := chunker.NewWithTable(nil, p, tab)
	for _, file := range [][]byte{make([]byte, 3<<20+5), []byte("small file")} {
		c.Reset(bytes.NewReader(file)) // reuses the buffer
		var buf []byte
		for {
			var err error
			buf, err = c.Next(buf)
			if err == io.EOF {
				break
			}
			if err != nil {
				log.Fatal(err)
			}
			fmt.Println(len(buf))
		}
	}
	// Output:
	// 1048576
	// 1048576
	// 1048576
	// 5
	// 10
}
