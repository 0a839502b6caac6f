"""Remote consoles: single-use console tokens and the websocket proxy (nova-novncproxy's place) that bridges a
browser's noVNC, or a serial websocket client, to the instance's socket on the node that holds it."""
