#!/usr/bin/env node
// A producer and a consumer of Cosmic Horizons events written with nothing
// but the files a foreign team gets: schemas/*.avsc, schemas/catalog.json and
// docs/foreign-producers.md — and clients nobody in this repository wrote
// (avsc, kafkajs, amqplib, the CloudEvents JS SDK). interop/interop_test.go
// drives it:
//
//   node interop.js consume kafka <brokers,csv> <group> <topics,csv> <count>
//   node interop.js consume amqp <url> <queues,csv> <count>
//       prints one JSON line per message: the transport, topic, key, the
//       CloudEvents attributes (validated by the CloudEvents SDK) and the
//       body decoded from the .avsc file ce_dataschema names (or JSON).
//   node interop.js produce kafka <brokers,csv> <plan.json>
//   node interop.js produce amqp <url> <exchange-prefix> <plan.json>
//       sends each entry of the plan — {case, encoding, malform, event},
//       event in the platform's JSON form — as a foreign producer would,
//       headers and body built from catalog.json and the .avsc files.
"use strict";

const fs = require("fs");
const path = require("path");
const avro = require("avsc");
const { CloudEvent, Kafka } = require("cloudevents");

const schemaDir = path.join(__dirname, "..", "..", "schemas");
const catalog = JSON.parse(fs.readFileSync(path.join(schemaDir, "catalog.json"), "utf8"));

// Avro types by ce_dataschema value ("urn:…:job-metrics/v2"), parsed once.
const typeCache = new Map();
function avroType(dataschema) {
  let t = typeCache.get(dataschema);
  if (t) return t;
  const bare = dataschema.startsWith(catalog.dataschema_prefix) ? dataschema.slice(catalog.dataschema_prefix.length) : dataschema;
  const [name, v] = bare.split("/v");
  const s = catalog.schemas[name];
  if (!s) throw new Error(`unknown schema ${name}`);
  const file = Number(v) === s.version ? s.file : (s.history || {})[bare];
  if (!file) throw new Error(`unknown schema version ${bare}`);
  t = avro.Type.forSchema(JSON.parse(fs.readFileSync(path.join(schemaDir, file), "utf8")), { wrapUnions: "auto" });
  typeCache.set(dataschema, t);
  return t;
}

// --- decoding (consumer) -------------------------------------------------

function decodeBody(attrs, body) {
  const ct = (attrs.datacontenttype || "application/avro").split(";")[0].trim().toLowerCase();
  if (ct === "application/json") return { encoding: "json", value: JSON.parse(body.toString("utf8")) };
  if (ct !== "application/avro") throw new Error(`unsupported content type ${ct}`);
  const et = catalog.event_types[attrs.type];
  if (!et) throw new Error(`unknown event type ${attrs.type}`);
  const type = avroType(attrs.dataschema || et.dataschema);
  let value = type.fromBuffer(body);
  if (et.union_branch !== undefined) {
    // A wrapped union: { "<record full name>": record }.
    const names = Object.keys(value);
    if (names.length !== 1 || names[0] !== et.record) throw new Error(`union branch ${names} for ${attrs.type}, want ${et.record}`);
    value = value[et.record];
  }
  return { encoding: "avro", value };
}

function plainHeaders(raw) {
  const out = {};
  for (const [k, v] of Object.entries(raw || {})) {
    if (v === undefined || v === null) continue;
    out[k] = Buffer.isBuffer(v) ? v.toString("utf8") : typeof v === "object" ? JSON.stringify(v) : String(v);
  }
  return out;
}

// report prints one consumed message. attrs are the CloudEvents attributes.
function report(transport, topic, key, headers, attrs, body) {
  const line = { transport, topic, key, headers, attributes: attrs };
  try {
    Object.assign(line, decodeBody(attrs, body));
  } catch (err) {
    line.error = String(err && err.message ? err.message : err);
  }
  process.stdout.write(JSON.stringify(line) + "\n");
}

// ceAttributes validates attrs with the CloudEvents SDK and returns its view.
function ceAttributes(ce) {
  ce.validate();
  const a = {};
  for (const k of ["specversion", "id", "type", "source", "time", "subject", "datacontenttype", "dataschema", "correlationid"]) {
    if (ce[k] !== undefined) a[k] = String(ce[k]);
  }
  return a;
}

async function consumeKafka(brokers, group, topics, count) {
  const { Kafka: KafkaJS, logLevel } = require("kafkajs");
  const kafka = new KafkaJS({ clientId: "interop-node", brokers: brokers.split(","), logLevel: logLevel.ERROR, retry: { retries: 10 } });
  const consumer = kafka.consumer({ groupId: group, allowAutoTopicCreation: false, sessionTimeout: 10000, heartbeatInterval: 1000 });
  await consumer.connect();
  await consumer.subscribe({ topics: topics.split(","), fromBeginning: true });
  let seen = 0;
  await new Promise((resolve, reject) => {
    consumer
      .run({
        eachMessage: async ({ topic, message }) => {
          const headers = plainHeaders(message.headers);
          let attrs;
          try {
            // The Kafka binding of the CloudEvents SDK reads the headers.
            const ce = Kafka.toEvent({ key: message.key, value: message.value, headers, timestamp: message.timestamp });
            attrs = ceAttributes(ce);
          } catch (err) {
            attrs = { invalid: String(err.message || err), ...(err.errors ? { errors: JSON.stringify(err.errors) } : {}) };
          }
          // toEvent hands the data back parsed for JSON; decode the raw bytes.
          attrs.type = attrs.type || headers.ce_type;
          attrs.dataschema = attrs.dataschema || headers.ce_dataschema;
          attrs.datacontenttype = attrs.datacontenttype || headers["content-type"];
          report("kafka", topic, message.key ? message.key.toString("utf8") : "", headers, attrs, message.value);
          if (++seen >= count) resolve();
        },
      })
      .catch(reject);
  });
  await consumer.disconnect();
}

async function consumeAMQP(url, queues, count) {
  const amqp = require("amqplib");
  const conn = await amqp.connect(url);
  const ch = await conn.createChannel();
  let seen = 0;
  await new Promise((resolve, reject) => {
    ch.on("error", reject);
    for (const q of queues.split(",")) {
      ch.consume(q, (msg) => {
        const p = msg.properties;
        const headers = plainHeaders(p.headers);
        const attrs0 = {};
        for (const [k, v] of Object.entries(headers)) {
          if (k.startsWith("cloudEvents_")) attrs0[k.slice("cloudEvents_".length)] = v;
        }
        if (p.contentType) attrs0.datacontenttype = p.contentType;
        let attrs;
        try {
          attrs = ceAttributes(new CloudEvent(attrs0, false));
        } catch (err) {
          attrs = { invalid: String(err.message || err), ...attrs0 };
        }
        report("amqp", msg.fields.exchange, headers["x-message-key"] || "", headers, attrs, msg.content);
        ch.ack(msg);
        if (++seen >= count) resolve();
      }).catch(reject);
    }
  });
  await ch.close();
  await conn.close();
}

// --- encoding (producer) -------------------------------------------------

// toAvro turns a value in the platform's JSON form into what avsc writes
// for the Avro type t: times in RFC 3339 become timestamp-millis, a JSON
// object of labels becomes the Avro array of {key, value} records, and
// absent fields get their zero value.
function toAvro(t, v) {
  const lt = t.typeName;
  if (lt === "record" || lt === "error") {
    const out = {};
    for (const f of t.fields) out[f.name] = toAvro(f.type, v == null ? undefined : v[f.name]);
    return out;
  }
  if (t instanceof avro.types.LogicalType) {
    return toAvro(t.underlyingType, v);
  }
  if (lt === "array") {
    const items = t.itemsType;
    if (v && !Array.isArray(v) && items.typeName === "record") {
      return Object.keys(v).sort().map((k) => toAvro(items, { key: k, value: v[k] }));
    }
    return (v || []).map((x) => toAvro(items, x));
  }
  if (lt === "map") {
    const out = {};
    for (const [k, x] of Object.entries(v || {})) out[k] = toAvro(t.valuesType, x);
    return out;
  }
  if (lt === "union:unwrapped") {
    if (v == null) return null;
    return toAvro(t.types.find((x) => x.typeName !== "null"), v);
  }
  switch (lt) {
    case "long":
    case "int":
      if (typeof v === "string") return Date.parse(v); // a time in the JSON form
      return v == null ? 0 : v;
    case "double":
    case "float":
      return v == null ? 0 : v;
    case "boolean":
      return !!v;
    case "string":
      return v == null ? "" : v;
    case "enum":
      return v == null ? t.symbols[0] : v;
  }
  throw new Error(`toAvro: type ${lt}`);
}

function encodeAvro(et, event) {
  const type = avroType(et.dataschema);
  if (et.union_branch !== undefined) {
    const branch = type.types[et.union_branch];
    return type.toBuffer({ [et.record]: toAvro(branch, event) });
  }
  return type.toBuffer(toAvro(type, event));
}

function upperIDs(event) {
  const e = JSON.parse(JSON.stringify(event));
  e.event_id = e.event_id.toUpperCase();
  e.correlation_id = e.correlation_id.toUpperCase();
  return e;
}

// build returns {topic, key, attrs, body} for one plan entry.
function build(entry) {
  let event = entry.event;
  if (entry.malform === "upper-ids") event = upperIDs(event);
  const et = catalog.event_types[event.event_type];
  if (!et) throw new Error(`unknown event type ${event.event_type}`);
  let key = "";
  for (const f of et.key) {
    const v = f.split(".").reduce((o, p) => (o == null ? undefined : o[p]), event);
    if (v) {
      key = v;
      break;
    }
  }
  const attrs = {
    specversion: catalog.specversion,
    id: event.event_id,
    type: event.event_type,
    source: "//interop/node",
    time: new Date(event.timestamp).toISOString(),
    subject: key,
    correlationid: event.correlation_id,
    datacontenttype: catalog.content_types[entry.encoding],
  };
  let body;
  if (entry.encoding === "avro") {
    attrs.dataschema = et.dataschema;
    body = encodeAvro(et, event);
  } else {
    body = Buffer.from(JSON.stringify(event), "utf8");
  }
  // The CloudEvents SDK checks what a valid producer writes (strict mode
  // throws on a bad attribute) before the malformed cases break it.
  new CloudEvent({ ...attrs }, true);
  switch (entry.malform || "") {
    case "":
    case "upper-ids":
      break;
    case "no-specversion":
      delete attrs.specversion;
      break;
    case "specversion-0.3":
      attrs.specversion = "0.3";
      break;
    case "no-source":
      delete attrs.source;
      break;
    case "no-type":
      delete attrs.type;
      break;
    case "datacontenttype-only":
    case "no-content-type":
      break; // handled per transport
    default:
      throw new Error(`unknown malform ${entry.malform}`);
  }
  return { topic: et.topic, key, attrs, body, malform: entry.malform || "", caseName: entry.case };
}

async function produceKafka(brokers, planFile) {
  const plan = JSON.parse(fs.readFileSync(planFile, "utf8"));
  const { Kafka: KafkaJS, logLevel } = require("kafkajs");
  const kafka = new KafkaJS({ clientId: "interop-node", brokers: brokers.split(","), logLevel: logLevel.ERROR, retry: { retries: 10 } });
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  for (const entry of plan) {
    const m = build(entry);
    const headers = { "interop-case": m.caseName };
    for (const [k, v] of Object.entries(m.attrs)) {
      if (k === "datacontenttype") {
        if (m.malform !== "no-content-type") headers["content-type"] = v;
      } else {
        headers["ce_" + k] = v;
      }
    }
    await producer.send({ topic: m.topic, acks: -1, messages: [{ key: m.key, value: m.body, headers }] });
  }
  await producer.disconnect();
}

async function produceAMQP(url, prefix, planFile) {
  const plan = JSON.parse(fs.readFileSync(planFile, "utf8"));
  const amqp = require("amqplib");
  const conn = await amqp.connect(url);
  const ch = await conn.createConfirmChannel();
  for (const entry of plan) {
    const m = build(entry);
    const headers = { "interop-case": m.caseName, "x-message-key": m.key };
    let contentType;
    for (const [k, v] of Object.entries(m.attrs)) {
      if (k === "datacontenttype") {
        if (m.malform === "datacontenttype-only") headers.cloudEvents_datacontenttype = v;
        else if (m.malform !== "no-content-type") contentType = v;
      } else {
        headers["cloudEvents_" + k] = v;
      }
    }
    const opts = { headers, persistent: true, mandatory: true, messageId: m.attrs.id };
    if (contentType) opts.contentType = contentType;
    // The exchange is the topic; the routing key the event type.
    ch.publish(prefix + m.topic, m.attrs.type || "", m.body, opts);
  }
  await ch.waitForConfirms();
  await ch.close();
  await conn.close();
}

async function main(argv) {
  const [cmd, transport, ...rest] = argv;
  if (cmd === "consume" && transport === "kafka") return consumeKafka(rest[0], rest[1], rest[2], Number(rest[3]));
  if (cmd === "consume" && transport === "amqp") return consumeAMQP(rest[0], rest[1], Number(rest[2]));
  if (cmd === "produce" && transport === "kafka") return produceKafka(rest[0], rest[1]);
  if (cmd === "produce" && transport === "amqp") return produceAMQP(rest[0], rest[1], rest[2]);
  throw new Error(`usage: interop.js consume|produce kafka|amqp …`);
}

main(process.argv.slice(2)).then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`interop.js: ${err && err.stack ? err.stack : err}\n`);
    process.exit(1);
  },
);
