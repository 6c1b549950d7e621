// Command load is make bench's SMTP load client and meter. It sends the same load to every relay the
// benchmark compares, measures each relay the same way, and prints the comparison table.
//
// Subcommands:
//
//	load run    sends -messages messages of -size bytes over -sessions concurrent SMTP sessions, one message
//	            per connection (like smtp-source -s 20 -m N), to one relay; waits until the sink has received
//	            all of them; prints one JSON line (a Result) with the rates, the time from the end of DATA
//	            (the ".") to the 250 (p50, p99), and the CPU and peak memory of the watched process trees
//	load probe  sends one message (clean, GTUBE or EICAR) and prints the reply to the end of DATA
//	load report reads the JSON lines of a whole benchmark and prints the table (medians of the rounds and
//	            Easymail/anchor ratios)
//
// Usage:
//
//	load run -addr 127.0.0.1:2525 -sessions 20 -messages 2000 -size 5120 -sink-out sink.out \
//	    -watch relay=1234 -watch milters=2345,2346 -watch scanners=3456,3457 \
//	    -mode plain -relay easymail -side easymail -round 1
//	load probe -addr 127.0.0.1:2525 -kind gtube
//	load report [-markdown] results.jsonl
//
// The CPU of a process tree is read from /proc/PID/stat (utime+stime of every live process of the tree, plus
// cutime+cstime: the CPU of the children it reaped, such as Postfix's daemons) at the start and at the end of
// the run; its memory is sampled every -interval (the sum of the resident set of its processes, and their
// proportional set size at the peak, which counts shared pages once).
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "run":
		err = runCmd(os.Args[2:], os.Stdout)
	case "probe":
		err = probeCmd(os.Args[2:], os.Stdout)
	case "report":
		err = reportCmd(os.Args[2:], os.Stdout)
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "load %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: load run|probe|report [flags]; load SUBCOMMAND -h for the flags")
	os.Exit(2)
}
