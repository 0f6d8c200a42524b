// Command vitessref prints the keyspace ID (hex) that Vitess' own vindex computes for each
// integer id read from stdin, one per line:
//
//	vitessref hash      the `hash` vindex (DES of the uint64 under a null key)
//	vitessref xxhash    the `xxhash` vindex (xxhash64 of the id's bytes)
package main

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"

	"vitess.io/vitess/go/sqltypes"
	"vitess.io/vitess/go/vt/vtgate/vindexes"
)

func main() {
	kind := os.Args[1]
	vindex, err := vindexes.CreateVindex(kind, kind, nil)
	if err != nil {
		panic(err)
	}
	hasher := vindex.(vindexes.Hashing)
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	for in.Scan() {
		v, err := strconv.ParseInt(in.Text(), 10, 64)
		if err != nil {
			panic(err)
		}
		ksid, err := hasher.Hash(sqltypes.NewInt64(v))
		if err != nil {
			panic(err)
		}
		fmt.Fprintln(out, hex.EncodeToString(ksid))
	}
}
