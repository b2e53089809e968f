// syslog_loadgen: the load generator and verifier of `deno task bench -scenario syslog,udp`
// (scripts/bench_syslog.ts). Standard library only; built with GO111MODULE=off.
//
// Every message is RFC 5424 and unique, S-1 bytes long (the stored line, LF included, is S bytes):
//
//	<134>1 2026-11-30T12:34:56.123456+00:00 bench-host loadgen 4242 ID47 - c<conn> <seq> <filler>
//
// so that the verifier can tell missing, duplicated and torn lines from the stored file.
//
//	syslog_loadgen tcp -addr HOST:PORT -c C -n N -s S [-sink FILE -base BYTES -timeout D]
//	    C connections, each sending N octet-counted messages (RFC 6587 "LEN SP MSG"); with -sink,
//	    waits until FILE holds every byte and prints the end-to-end rate (first byte sent to last
//	    byte stored).
//	syslog_loadgen udp -addr HOST:PORT -rate R -seconds T -s S [-conn ID]
//	    One datagram per message at R datagrams/s for T seconds, paced in ~100 µs steps; prints
//	    how many were sent.
//	syslog_loadgen verify -c C -n N -s S FILE...
//	    Counts the lines of FILEs against what was sent: missing, duplicated, torn.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"
)

// header is everything before "c<conn> <seq> ": an RFC 5424 header with a real time stamp.
func header() []byte {
	ts := time.Now().UTC().Format("2006-01-02T15:04:05.000000+00:00")
	return []byte("<134>1 " + ts + " bench-host loadgen 4242 ID47 - ")
}

// message appends one message of size-1 bytes (no LF) to buf.
func message(buf, head []byte, conn, seq, size int) []byte {
	start := len(buf)
	buf = append(buf, head...)
	buf = append(buf, 'c')
	buf = strconv.AppendInt(buf, int64(conn), 10)
	buf = append(buf, ' ')
	buf = strconv.AppendInt(buf, int64(seq), 10)
	buf = append(buf, ' ')
	for len(buf)-start < size-1 {
		buf = append(buf, byte('a'+(len(buf)-start)%26))
	}
	return buf
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

func minSize(head []byte, size int) {
	// The header, "c<conn> <seq> " and at least one filler byte, plus the LF.
	if size < len(head)+24 {
		die("-s %d is too small: messages need at least %d bytes", size, len(head)+24)
	}
}

func runTCP(args []string) {
	fs := flag.NewFlagSet("tcp", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:5514", "target")
	conns := fs.Int("c", 8, "connections")
	n := fs.Int("n", 100000, "messages per connection")
	size := fs.Int("s", 100, "bytes per stored line, LF included")
	sink := fs.String("sink", "", "file to wait for (empty: do not wait)")
	base := fs.Int64("base", 0, "bytes in the sink before the run")
	timeout := fs.Duration("timeout", 300*time.Second, "give up waiting after")
	fs.Parse(args)
	head := header()
	minSize(head, *size)
	want := *base + int64(*conns)*int64(*n)*int64(*size)
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
			prefix := strconv.AppendInt(nil, int64(*size-1), 10)
			prefix = append(prefix, ' ')
			buf := make([]byte, 0, *size+32)
			for i := 0; i < *n; i++ {
				buf = message(append(buf[:0], prefix...), head, c, i, *size)
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
	msgs := float64(*conns) * float64(*n)
	mb := msgs * float64(*size) / 1e6
	if *sink == "" {
		fmt.Printf("sent messages=%.0f send=%.3fs rate=%.0f msgs/s %.1f MB/s\n",
			msgs, sent.Seconds(), msgs/sent.Seconds(), mb/sent.Seconds())
		return
	}
	deadline := t0.Add(*timeout)
	got := fileSize(*sink)
	for got < want && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
		got = fileSize(*sink)
	}
	el := time.Since(t0)
	status := "ok"
	if got < want {
		status = fmt.Sprintf("INCOMPLETE %d/%d bytes", got-*base, want-*base)
	}
	fmt.Printf("%s messages=%.0f send=%.3fs e2e=%.3fs rate=%.0f lines/s %.1f MB/s\n",
		status, msgs, sent.Seconds(), el.Seconds(), msgs/el.Seconds(), mb/el.Seconds())
}

func runUDP(args []string) {
	fs := flag.NewFlagSet("udp", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:5514", "target")
	rate := fs.Float64("rate", 100000, "datagrams per second")
	seconds := fs.Float64("seconds", 5, "how long to send")
	size := fs.Int("s", 100, "bytes per stored line, LF included (datagrams are one byte less)")
	connID := fs.Int("conn", 0, "the c<conn> of the messages")
	fs.Parse(args)
	head := header()
	minSize(head, *size)
	raddr, err := net.ResolveUDPAddr("udp4", *addr)
	if err != nil {
		die("%v", err)
	}
	// A raw connected socket written with sendmmsg(2): no poller in the way.
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		die("udp mode runs on linux/amd64 only (sendmmsg)")
	}
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_DGRAM, 0)
	if err != nil {
		die("socket: %v", err)
	}
	sa := &syscall.SockaddrInet4{Port: raddr.Port}
	copy(sa.Addr[:], raddr.IP.To4())
	if err := syscall.Connect(fd, sa); err != nil {
		die("connect: %v", err)
	}
	// Up to 64 datagrams per sendmmsg(2): one system call per step of a burst, not per datagram.
	const batch = 64
	bufs := make([][]byte, batch)
	iovs := make([]syscall.Iovec, batch)
	hdrs := make([]mmsghdr, batch)
	for i := range bufs {
		bufs[i] = make([]byte, 0, *size+32)
	}
	step := syscall.NsecToTimespec(int64(100 * time.Microsecond))
	sent, failed := 0, 0
	t0 := time.Now()
	end := time.Duration(*seconds * float64(time.Second))
	for {
		el := time.Since(t0)
		if el >= end {
			break
		}
		// Behind the rate: one batch, then the clock again (so that the deadline holds when the
		// rate cannot be reached); caught up: sleep a step.
		k := int(el.Seconds()**rate) - sent - failed
		if k <= 0 {
			syscall.Nanosleep(&step, nil)
			continue
		}
		if k > batch {
			k = batch
		}
		for i := 0; i < k; i++ {
			bufs[i] = message(bufs[i][:0], head, *connID, sent+failed+i, *size)
			iovs[i] = syscall.Iovec{Base: &bufs[i][0]}
			iovs[i].SetLen(len(bufs[i]))
			hdrs[i] = mmsghdr{}
			hdrs[i].hdr.Iov = &iovs[i]
			hdrs[i].hdr.Iovlen = 1
		}
		r, _, errno := syscall.Syscall6(sysSendmmsg, uintptr(fd),
			uintptr(unsafe.Pointer(&hdrs[0])), uintptr(k), 0, 0, 0)
		if errno != 0 {
			failed++ // ECONNREFUSED (nobody listening), ENOBUFS: the first is not sent
			continue
		}
		sent += int(r)
	}
	el := time.Since(t0)
	syscall.Close(fd)
	fmt.Printf("sent=%d failed=%d seconds=%.3f rate=%.0f datagrams/s\n",
		sent, failed, el.Seconds(), float64(sent)/el.Seconds())
}

// sysSendmmsg is sendmmsg's number on linux/amd64 (Go 1.19's syscall package lacks it).
const sysSendmmsg = 307

// mmsghdr is struct mmsghdr of sendmmsg(2).
type mmsghdr struct {
	hdr syscall.Msghdr
	len uint32
	_   [4]byte
}

func runVerify(args []string) {
	fs := flag.NewFlagSet("verify", flag.ExitOnError)
	conns := fs.Int("c", 8, "connections")
	n := fs.Int("n", 100000, "messages per connection")
	size := fs.Int("s", 100, "bytes per stored line, LF included")
	fs.Parse(args)
	seen := make([][]byte, *conns)
	for i := range seen {
		seen[i] = make([]byte, *n)
	}
	torn, dup, total := 0, 0, 0
	for _, path := range fs.Args() {
		f, err := os.Open(path)
		if err != nil {
			die("open: %v", err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			t := sc.Text()
			total++
			// <PRI>1 TS HOST APP PROCID MSGID SD c<conn> <seq> <filler>
			fields := strings.SplitN(t, " ", 10)
			if len(t) != *size-1 || len(fields) != 10 || !strings.HasPrefix(fields[0], "<") ||
				!strings.HasPrefix(fields[7], "c") {
				torn++
				continue
			}
			c, e1 := strconv.Atoi(fields[7][1:])
			i, e2 := strconv.Atoi(fields[8])
			if e1 != nil || e2 != nil || c < 0 || c >= *conns || i < 0 || i >= *n {
				torn++
				continue
			}
			if seen[c][i] != 0 {
				dup++
			}
			seen[c][i] = 1
		}
		if err := sc.Err(); err != nil {
			die("read %s: %v", path, err)
		}
		f.Close()
	}
	missing := 0
	for c := range seen {
		for i := range seen[c] {
			if seen[c][i] == 0 {
				missing++
			}
		}
	}
	fmt.Printf("lines=%d missing=%d duplicated=%d torn=%d\n", total, missing, dup, torn)
}

func main() {
	if len(os.Args) < 2 {
		die("usage: syslog_loadgen tcp|udp|verify [flags]")
	}
	switch os.Args[1] {
	case "tcp":
		runTCP(os.Args[2:])
	case "udp":
		runUDP(os.Args[2:])
	case "verify":
		runVerify(os.Args[2:])
	default:
		die("unknown mode %q: tcp, udp or verify", os.Args[1])
	}
}
