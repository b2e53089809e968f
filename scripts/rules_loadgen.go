// rules_loadgen: the load generator of `deno task bench -scenario rules` (scripts/bench_rules.ts).
// Standard library only; built with GO111MODULE=off.
//
// C connections each send N JSON lines of exactly S bytes (LF included), unique and checkable:
//
//	{"level":"info","msg":"c<conn> <seq> <filler>"}
//
// where every K-th line of a connection (seq % K == 0) has the level "debug" instead, for a filter
// to drop. With -sink it waits until the file holds the bytes expected (all lines, or with
// -filtered only the lines that are not debug) and prints the end-to-end rate: input lines per
// second from the first byte sent to the last byte stored.
//
//	rules_loadgen -addr HOST:PORT -c C -n N -s S [-debug K] [-filtered] -sink FILE [-timeout D]
package main

import (
	"bufio"
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"
)

func line(buf []byte, conn, seq, size int, debug bool) []byte {
	start := len(buf)
	if debug {
		buf = append(buf, `{"level":"debug","msg":"c`...)
	} else {
		buf = append(buf, `{"level":"info","msg":"c`...)
	}
	buf = strconv.AppendInt(buf, int64(conn), 10)
	buf = append(buf, ' ')
	buf = strconv.AppendInt(buf, int64(seq), 10)
	buf = append(buf, ' ')
	for len(buf)-start < size-3 {
		buf = append(buf, byte('a'+(len(buf)-start)%26))
	}
	return append(buf, '"', '}', '\n')
}

func fileSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}

func die(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(2)
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "target")
	conns := flag.Int("c", 8, "connections")
	n := flag.Int("n", 100000, "lines per connection")
	size := flag.Int("s", 100, "bytes per line, LF included")
	every := flag.Int("debug", 5, "every K-th line is debug")
	filtered := flag.Bool("filtered", false, "expect the debug lines dropped")
	sink := flag.String("sink", "", "file to wait for")
	timeout := flag.Duration("timeout", 300*time.Second, "give up waiting after")
	flag.Parse()
	if *size < 64 {
		die("-s %d is too small: lines need at least 64 bytes", *size)
	}
	kept := int64(*n)
	if *filtered {
		kept -= int64((*n + *every - 1) / *every)
	}
	want := int64(*conns) * kept * int64(*size)
	errs := make(chan error, *conns)
	t0 := time.Now()
	for c := 0; c < *conns; c++ {
		go func(c int) {
			conn, err := net.Dial("tcp", *addr)
			if err != nil {
				errs <- err
				return
			}
			defer conn.Close()
			w := bufio.NewWriterSize(conn, 64<<10)
			buf := make([]byte, 0, *size+32)
			for i := 0; i < *n; i++ {
				buf = line(buf[:0], c, i, *size, i%*every == 0)
				if _, err := w.Write(buf); err != nil {
					errs <- err
					return
				}
			}
			errs <- w.Flush()
		}(c)
	}
	for c := 0; c < *conns; c++ {
		if err := <-errs; err != nil {
			die("send error: %v", err)
		}
	}
	sent := time.Since(t0)
	lines := float64(*conns) * float64(*n)
	deadline := t0.Add(*timeout)
	got := fileSize(*sink)
	for got < want && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
		got = fileSize(*sink)
	}
	el := time.Since(t0)
	status := "ok"
	if got != want {
		status = fmt.Sprintf("WRONG %d/%d bytes", got, want)
	}
	fmt.Printf("%s lines=%.0f stored=%d send=%.3fs e2e=%.3fs rate=%.0f lines/s %.1f MB/s\n",
		status, lines, got/int64(*size), sent.Seconds(), el.Seconds(), lines/el.Seconds(),
		lines*float64(*size)/1e6/el.Seconds())
}
