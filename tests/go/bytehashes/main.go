// Command bytehashes prints, for each key read from stdin (the hex of its bytes, one per line),
// the hashes services shard with by hand, as Go's standard library and cespare/xxhash (the
// xxhash Vitess uses) compute them: crc32 (IEEE), fnv1a32, fnv1a64, xxhash64, tab-separated.
package main

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"hash/fnv"
	"os"

	"github.com/cespare/xxhash/v2"
)

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	for in.Scan() {
		key, err := hex.DecodeString(in.Text())
		if err != nil {
			panic(err)
		}
		f32 := fnv.New32a()
		f32.Write(key)
		f64 := fnv.New64a()
		f64.Write(key)
		fmt.Fprintf(out, "%d\t%d\t%d\t%d\n", crc32.ChecksumIEEE(key), f32.Sum32(), f64.Sum64(),
			xxhash.Sum64(key))
	}
}
