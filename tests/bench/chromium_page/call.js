// A browser caller of the PolyAI WebRTC Gateway, for tests and benchmarks.
//
// Speaks the gateway's signaling protocol (docs: webrtc-gateway-api): a
// websocket to `url`, an offer carrying `authToken` and `mode`, the answer with
// the sessionId, trickle ICE both ways (ours held until the answer names the
// session; the gateway's held until its answer is applied), `close` on hang-up
// and on unload. The microphone comes from getUserMedia with the audio
// processing off unless `ap=1`; the agent's audio plays through an <audio>
// element (Chromium decodes a remote track only when it is attached to one).
//
// Everything the harness reads is on window.polyphoneTest; it polls it over
// the DevTools protocol (tests/helpers/chromium.py).
"use strict";

(function () {
  const params = new URLSearchParams(location.search);
  const t0 = performance.now();
  const now = () => Math.round(performance.now() - t0);

  const state = {
    phase: "idle",          // idle -> media -> signaling -> offered -> answered -> connected -> closed | failed
    error: null,            // why it failed (text)
    gatewayErrors: [],      // error frames: {code, message}
    closedBy: null,         // "agent" | "caller" | null
    sessionId: "",
    callSid: "",
    iceConnectionState: "new",
    connectionState: "new",
    candidatesSent: 0,
    candidatesReceived: 0,
    remoteTrack: false,
    playing: false,
    playError: null,
    timings: {},            // ms since the page's script ran: media, ws_open, answer, connected
    log: [],                // [ms, text], newest last (bounded)
    start, hangup, stats,
  };
  window.polyphoneTest = state;

  let ws = null;
  let pc = null;
  let stream = null;
  let remoteApplied = false;
  const heldLocal = [];     // our candidates before the answer brought the sessionId
  const heldRemote = [];    // the gateway's candidates before its answer was applied

  function note(text) {
    state.log.push([now(), text]);
    if (state.log.length > 200) state.log.shift();
    const el = document.getElementById("status");
    if (el) el.textContent = state.phase + ": " + text;
  }

  function setPhase(phase, why) {
    state.phase = phase;
    note(phase + (why ? " (" + why + ")" : ""));
  }

  function fail(why) {
    if (state.phase === "closed" || state.phase === "failed") return;
    state.error = String(why);
    setPhase("failed", state.error);
    teardown(false);
  }

  function send(obj) {
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(obj));
  }

  function sendCandidate(c) {
    send({
      type: "ice-candidate",
      sessionId: state.sessionId,
      data: { candidate: c.candidate, sdpMid: c.sdpMid, sdpMLineIndex: c.sdpMLineIndex },
    });
    state.candidatesSent += 1;
  }

  async function addRemote(data) {
    try {
      await pc.addIceCandidate(data);
      state.candidatesReceived += 1;
    } catch (e) {
      note("addIceCandidate failed: " + e);
    }
  }

  function uuid() {
    if (crypto.randomUUID) return crypto.randomUUID();
    return "xxxxxxxx-xxxx-4xxx-8xxx-xxxxxxxxxxxx".replace(/x/g, () =>
      Math.floor(Math.random() * 16).toString(16));
  }

  async function onMessage(ev) {
    let msg;
    try {
      msg = JSON.parse(ev.data);
    } catch (e) {
      note("dropped a frame that is not JSON");
      return;
    }
    if (!msg || typeof msg !== "object") return;
    if (msg.sessionId && state.sessionId && msg.sessionId !== state.sessionId) {
      note("ignored a " + msg.type + " frame for another session");
      return;
    }
    switch (msg.type) {
      case "answer": {
        if (state.sessionId) { note("ignored a second answer"); return; }
        state.sessionId = msg.sessionId;
        state.timings.answer = now();
        setPhase("answered");
        await pc.setRemoteDescription({ type: "answer", sdp: msg.data.sdp });
        remoteApplied = true;
        for (const c of heldLocal.splice(0)) sendCandidate(c);
        for (const d of heldRemote.splice(0)) await addRemote(d);
        break;
      }
      case "ice-candidate":
        if (!msg.data || typeof msg.data.candidate !== "string") return;
        if (remoteApplied) await addRemote(msg.data);
        else heldRemote.push(msg.data);
        break;
      case "error":
        state.gatewayErrors.push({ code: msg.data && msg.data.code, message: msg.data && msg.data.message });
        fail("gateway error " + (msg.data && msg.data.code));
        break;
      case "close":
        state.closedBy = "agent";
        setPhase("closed", "the agent ended the call");
        teardown(false);
        break;
      case "pong":
        break;
      default:
        note("ignored a frame of type " + msg.type);
    }
  }

  async function start() {
    if (state.phase !== "idle") return state.phase;
    const url = params.get("url");
    if (!url) { fail("no ?url= given"); return state.phase; }
    const ap = params.get("ap") === "1";
    try {
      setPhase("media");
      stream = await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: ap, noiseSuppression: ap, autoGainControl: ap },
        video: false,
      });
      state.timings.media = now();
      const track = stream.getAudioTracks()[0];
      note("microphone: " + (track ? track.label : "none"));

      pc = new RTCPeerConnection({ iceServers: [] });   // loopback only: nothing leaves the machine
      for (const t of stream.getTracks()) pc.addTrack(t, stream);
      pc.onicecandidate = (ev) => {
        if (!ev.candidate || !ev.candidate.candidate) return;   // end of candidates
        if (state.sessionId) sendCandidate(ev.candidate);
        else heldLocal.push(ev.candidate);
      };
      pc.oniceconnectionstatechange = () => {
        state.iceConnectionState = pc.iceConnectionState;
        note("ice " + pc.iceConnectionState);
      };
      pc.onconnectionstatechange = () => {
        state.connectionState = pc.connectionState;
        if (pc.connectionState === "connected" && state.phase === "answered") {
          state.timings.connected = now();
          setPhase("connected");
        } else if (pc.connectionState === "failed") {
          fail("peer connection failed");
        }
      };
      pc.ontrack = (ev) => {
        if (ev.track.kind !== "audio") return;
        state.remoteTrack = true;
        const audio = document.getElementById("remote");
        audio.srcObject = ev.streams && ev.streams[0] ? ev.streams[0] : new MediaStream([ev.track]);
        audio.play().then(() => { state.playing = true; },
                          (e) => { state.playError = String(e); note("play() failed: " + e); });
      };

      setPhase("signaling");
      ws = new WebSocket(url);
      await new Promise((resolve, reject) => {
        ws.onopen = resolve;
        ws.onerror = () => reject(new Error("websocket error"));
      });
      state.timings.ws_open = now();
      ws.onmessage = (ev) => { onMessage(ev).catch((e) => fail("handling a frame: " + e)); };
      ws.onclose = () => {
        if (state.phase !== "closed" && state.phase !== "failed") fail("signaling socket closed");
      };

      const offer = await pc.createOffer();
      await pc.setLocalDescription(offer);
      state.callSid = uuid();
      send({
        type: "offer",
        sessionId: "",
        data: { type: "offer", sdp: pc.localDescription.sdp },
        authToken: params.get("token") || "",
        mode: params.get("mode") || "echo",
        callSid: state.callSid,
      });
      setPhase("offered");
    } catch (e) {
      fail(e && e.message ? e.message : e);
    }
    return state.phase;
  }

  function teardown(sendClose) {
    if (sendClose && state.sessionId) send({ type: "close", sessionId: state.sessionId });
    if (pc) { try { pc.close(); } catch (e) { /* closing anyway */ } }
    if (stream) for (const t of stream.getTracks()) t.stop();
    if (ws) { try { ws.close(); } catch (e) { /* closing anyway */ } }
  }

  function hangup() {
    if (state.phase === "closed" || state.phase === "failed") return state.phase;
    state.closedBy = "caller";
    teardown(true);
    setPhase("closed", "hung up");
    return state.phase;
  }

  // Summary of getStats() for the harness: what came in, what went out, the path.
  async function stats() {
    const out = { inbound: null, outbound: null, source: null, pair: null, codec: null, playout: null };
    if (!pc) return out;
    const report = await pc.getStats();
    const byId = new Map();
    report.forEach((s) => byId.set(s.id, s));
    const pick = (s, keys) => {
      const o = {};
      for (const k of keys) if (s[k] !== undefined) o[k] = s[k];
      return o;
    };
    report.forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "audio") {
        out.inbound = pick(s, ["packetsReceived", "packetsLost", "packetsDiscarded", "bytesReceived",
          "jitter", "totalAudioEnergy", "audioLevel", "totalSamplesReceived", "totalSamplesDuration",
          "concealedSamples", "silentConcealedSamples", "concealmentEvents",
          "insertedSamplesForDeceleration", "removedSamplesForAcceleration",
          "jitterBufferDelay", "jitterBufferTargetDelay", "jitterBufferMinimumDelay",
          "jitterBufferEmittedCount", "totalProcessingDelay"]);
        const codec = byId.get(s.codecId);
        if (codec) out.codec = pick(codec, ["mimeType", "clockRate", "channels", "sdpFmtpLine"]);
        if (s.playoutId && byId.get(s.playoutId)) {
          out.playout = pick(byId.get(s.playoutId), ["totalPlayoutDelay", "totalSamplesCount",
            "synthesizedSamplesDuration", "synthesizedSamplesEvents"]);
        }
      } else if (s.type === "outbound-rtp" && s.kind === "audio") {
        out.outbound = pick(s, ["packetsSent", "bytesSent", "retransmittedPacketsSent"]);
      } else if (s.type === "media-source" && s.kind === "audio") {
        out.source = pick(s, ["audioLevel", "totalAudioEnergy", "totalSamplesDuration"]);
      } else if (s.type === "candidate-pair" && s.nominated && s.state === "succeeded") {
        const l = byId.get(s.localCandidateId) || {};
        const r = byId.get(s.remoteCandidateId) || {};
        out.pair = {
          local: (l.address || l.ip) + ":" + l.port + " " + l.candidateType + " " + l.protocol,
          remote: (r.address || r.ip) + ":" + r.port + " " + r.candidateType + " " + r.protocol,
          currentRoundTripTime: s.currentRoundTripTime,
        };
      }
    });
    return out;
  }

  window.addEventListener("pagehide", () => hangup());
  window.addEventListener("beforeunload", () => hangup());

  if (params.get("autostart") !== "0") start();
})();
