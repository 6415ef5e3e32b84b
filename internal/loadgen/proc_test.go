package loadgen

import "os"

func selfPID() int { return os.Getpid() }
