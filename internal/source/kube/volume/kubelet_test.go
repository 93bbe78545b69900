package volume_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// serveExec is a fake kubelet's exec endpoint: it upgrades to the
// v4.channel.k8s.io WebSocket protocol (channel 1 standard output, 2
// standard error, 3 the final status) and plays the script of cmd.
func serveExec(t *testing.T, w http.ResponseWriter, r *http.Request, cmd []string) {
	up := websocket.Upgrader{Subprotocols: []string{"v4.channel.k8s.io"}}
	conn, err := up.Upgrade(w, r, nil)
	if err != nil {
		t.Errorf("upgrade: %v", err)
		return
	}
	defer conn.Close()
	send := func(ch byte, data string) {
		if err := conn.WriteMessage(websocket.BinaryMessage, append([]byte{ch}, data...)); err != nil {
			t.Errorf("write: %v", err)
		}
	}
	status := func(st metav1.Status) {
		b, _ := json.Marshal(st)
		send(3, string(b))
	}
	switch cmd[0] {
	case "echo":
		send(1, strings.Repeat("x", 70000))
		send(1, "hello "+strings.Join(cmd[1:], " ")+"\n")
		send(2, "a warning")
		status(metav1.Status{Status: metav1.StatusSuccess})
	case "fail":
		send(1, "some output")
		send(2, "oops\nit broke")
		status(metav1.Status{Status: metav1.StatusFailure, Reason: "NonZeroExitCode", Message: "command terminated with non-zero exit code: 3",
			Details: &metav1.StatusDetails{Causes: []metav1.StatusCause{{Type: "ExitCode", Message: "3"}}}})
	}
	_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), timeNowPlus())
}

func timeNowPlus() time.Time { return time.Now().Add(time.Second) }
