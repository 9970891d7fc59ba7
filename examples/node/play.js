#!/usr/bin/env node
// Plays seat 0 (the seller) of a bargaining-v1 match against the arena's server-side bot, over
// the Play stream of maro.arena.v1.Arena, with a simple concession strategy read from the view.
//
//   node play.js --address 127.0.0.1:50051 [--seed N] [--key KEY]
//
// An arena started with a key file wants `authorization: Bearer <key>` on every call: --key, or
// the environment variable MARO_ARENA_KEY.
//
// Exits 0 when the match ends (printing the outcomes), 1 on any error.
'use strict';

const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const PROTO_ROOT = path.resolve(__dirname, '..', '..', 'proto');
const PROTO_FILE = 'maro/arena/v1/arena.proto';

function parseArgs(argv) {
  const args = { address: '127.0.0.1:50051', seed: 1, bot: 'bargaining-bot', key: process.env.MARO_ARENA_KEY || '' };
  for (let i = 0; i < argv.length; i += 1) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (flag === '--address' && value) { args.address = value; i += 1; }
    else if (flag === '--seed' && value) { args.seed = Number.parseInt(value, 10); i += 1; }
    else if (flag === '--bot' && value) { args.bot = value; i += 1; }
    else if (flag === '--key' && value) { args.key = value; i += 1; }
    else if (flag === '--help' || flag === '-h') {
      console.log('usage: node play.js --address HOST:PORT [--seed N] [--bot NAME] [--key KEY]');
      process.exit(0);
    } else {
      throw new Error(`unknown or incomplete argument ${flag}; try --help`);
    }
  }
  if (!Number.isInteger(args.seed)) throw new Error('--seed needs an integer');
  return args;
}

function loadArena() {
  const definition = protoLoader.loadSync(PROTO_FILE, {
    includeDirs: [PROTO_ROOT],
    keepCase: true, // field names exactly as in the .proto: view_json, seat_token, ...
    longs: String, // int64 seeds and deadlines arrive as strings, never lose precision
    enums: String,
    defaults: true,
    oneofs: true, // each PlayResponse names its filled `msg` field
  });
  return grpc.loadPackageDefinition(definition).maro.arena.v1;
}

// The strategy: open high above the own reservation value and concede linearly toward it; accept
// the other side's standing offer once it is at least as good as the next own offer would be.
function decide(view) {
  const seller = view.role === 'seller';
  const reserve = seller ? view.private.cost : view.private.value;
  const total = 2 * view.max_rounds;
  const progress = Math.min(1, view.turn / Math.max(1, total - 1));
  const margin = Math.max(2, 45 * (1 - progress));
  const target = Math.min(view.price_max, Math.max(0, Math.round(seller ? reserve + margin : reserve - margin)));
  const standing = view.standing_offer;
  if (standing && standing.role !== view.role) {
    const good = seller ? standing.price >= target : standing.price <= target;
    const profitable = seller ? standing.price > reserve : standing.price < reserve;
    if (good || (view.turns_left <= 1 && profitable)) return '[Accept]';
  }
  return `[Offer: ${target}]`;
}

// The caller's key travels as call metadata (grpc-js allows no call credentials on a plain channel).
function keyMetadata(key) {
  const metadata = new grpc.Metadata();
  if (key) metadata.set('authorization', `Bearer ${key}`);
  return metadata;
}

function unary(client, method, request, metadata) {
  return new Promise((resolve, reject) => {
    client[method](request, metadata, (err, response) => (err ? reject(err) : resolve(response)));
  });
}

function printEvents(observation) {
  for (const text of (observation && observation.events) || []) console.log(`  event: ${text}`);
}

// Plays one seat on an open Play stream; resolves with the MatchEnd message.
function playSeat(client, matchId, token, metadata) {
  return new Promise((resolve, reject) => {
    const call = client.Play(metadata);
    let ended = false;
    call.on('data', (response) => {
      const message = response[response.msg];
      switch (response.msg) {
        case 'joined':
          console.log(`joined match ${message.match_id} as seat ${message.seat} (${message.role})`);
          break;
        case 'observation':
          printEvents(message);
          break;
        case 'turn': {
          printEvents(message.observation);
          const text = decide(JSON.parse(message.observation.view_json));
          console.log(`turn ${message.turn} (attempt ${message.attempt}): ${text}`);
          call.write({ action: { turn: message.turn, text } });
          break;
        }
        case 'accepted':
          console.log(`  accepted turn ${message.turn}`);
          break;
        case 'rejection':
          // The server follows a rejection with a fresh turn prompt when attempts are left.
          console.log(`  rejected turn ${message.turn}: ${message.reason} (${message.attempts_left} attempts left)`);
          break;
        case 'end':
          ended = true;
          printEvents(message.observation);
          call.end();
          resolve(message);
          break;
        default:
          console.log(`  ignoring unknown message ${response.msg}`);
      }
    });
    call.on('error', (err) => { if (!ended) reject(err); });
    call.on('end', () => { if (!ended) reject(new Error('the arena closed the stream before the match ended')); });
    call.write({ join: { match_id: matchId, seat_token: token, player_name: 'node-example' } });
  });
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const arena = loadArena();
  const client = new arena.Arena(args.address, grpc.credentials.createInsecure());
  const metadata = keyMetadata(args.key);
  try {
    const created = await unary(client, 'CreateMatch', {
      game_id: 'bargaining-v1',
      seed: String(args.seed),
      params_json: '',
      seats: [{ kind: 'REMOTE', name: 'node-example' }, { kind: 'BOT', bot: args.bot }],
    }, metadata);
    const token = created.tokens.find((t) => t.seat === 0).token;
    console.log(`created match ${created.match_id} (seed ${args.seed})`);
    const end = await playSeat(client, created.match_id, token, metadata);
    console.log(`match over: ${end.reason}`);
    end.outcomes.forEach((outcome, seat) => console.log(`  seat ${seat} (${end.roles[seat]}): ${outcome}`));
  } finally {
    client.close();
  }
}

main().then(() => process.exit(0), (err) => {
  console.error(`error: ${err.message || err}`);
  process.exit(1);
});
