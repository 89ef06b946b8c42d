// The WorkflowMonitor of LAO's WebSocket docs, pointed at the bridge instead of LAO.
// Node 20 has no global WebSocket, so the `ws` package stands in for the browser's.
// Usage: node monitor.js WS_BASE FLOW RUN [TOKEN]  — prints one JSON line per handled event.
// With TOKEN it offers the subprotocol bearer.TOKEN, as a browser must (no headers there).
const WebSocket = require('ws');

class WorkflowMonitor {
  constructor(base, flowName, runName, token) {
    this.url = `${base}/ws/${encodeURIComponent(flowName)}/${encodeURIComponent(runName)}`;
    this.protocols = token ? [`bearer.${token}`] : [];
    this.ws = null;
    this.reconnectAttempts = 0;
    this.done = false;
  }

  connect() {
    this.ws = new WebSocket(this.url, this.protocols);
    this.ws.onopen = () => {
      console.log(JSON.stringify({ open: true, protocol: this.ws.protocol }));
      this.reconnectAttempts = 0;
      this.ws.send(JSON.stringify({ type: 'ping' }));
      this.pingInterval = setInterval(() => {
        this.ws.send(JSON.stringify({ type: 'ping' }));
      }, 30000);
    };
    this.ws.onmessage = (event) => {
      let data;
      try { data = JSON.parse(event.data); } catch (e) { return; }  // greetings, echoes
      switch (data.event_type) {
        case 'flow_started':
        case 'task_started':
        case 'task_completed':
          this.report(data);
          break;
        case 'flow_completed':
          this.report(data);
          this.done = true;
          this.ws.close();
          break;
        case 'task_failed':
        case 'flow_error':
          this.report(data);
          if (data.event_type === 'flow_error') { this.done = true; this.ws.close(); }
          break;
      }
    };
    this.ws.onclose = () => {
      clearInterval(this.pingInterval);
      if (this.done) { console.log(JSON.stringify({ closed: true })); process.exit(0); }
      this.handleReconnect();
    };
    this.ws.onerror = () => {};
  }

  handleReconnect() {
    if (this.reconnectAttempts < 3) {
      this.reconnectAttempts++;
      setTimeout(() => this.connect(), 200 * this.reconnectAttempts);
    } else {
      process.exit(1);
    }
  }

  report(data) {
    console.log(JSON.stringify({ event_type: data.event_type, task_name: data.task_name || null }));
  }
}

const [base, flow, run, token] = process.argv.slice(2);
new WorkflowMonitor(base, flow, run, token).connect();
