<?php

declare(strict_types=1);

namespace Emitgate\Internal;

use Emitgate\AckResult;
use Emitgate\AllRoomsResult;
use Emitgate\Exception\EmitgateException;
use Emitgate\Exception\InvalidArgumentException;
use Emitgate\FetchSocketsResult;
use Emitgate\Handshake;
use Emitgate\Proto\V1\AllRoomsRequest;
use Emitgate\Proto\V1\AllRoomsResponse;
use Emitgate\Proto\V1\EmitWithAckRequest;
use Emitgate\Proto\V1\EmitWithAckResponse;
use Emitgate\Proto\V1\FetchSocketsRequest;
use Emitgate\Proto\V1\FetchSocketsResponse;
use Emitgate\Proto\V1\ServerCountRequest;
use Emitgate\Proto\V1\ServerCountResponse;
use Emitgate\Proto\V1\ServerSideEmitWithAckRequest;
use Emitgate\Proto\V1\ServerSideEmitWithAckResponse;
use Emitgate\RemoteSocket;
use Emitgate\ServerAckResult;
use Emitgate\ServerReply;

/**
 * The calls that wait for the Socket.IO servers' answers, as in the
 * JavaScript server API: emitWithAck, fetchSockets, allRooms, serverCount
 * and serverSideEmitWithAck. The client's timeout() is how long the
 * gateway waits for the answers (like the JavaScript timeout()); the HTTP
 * deadline of these calls is that plus a margin, so that the gateway's
 * "timed out, here is what arrived" answer comes back. A timeout is not an
 * error: every result says how many servers answered and whether
 * everything arrived (`complete`).
 *
 * Used by Client, whose $scope, $transport and $timeout it reads.
 *
 * @internal
 */
trait Feedback
{
    /**
     * Sends an event with an ack callback to the sockets in the selected
     * rooms (every socket of the namespace without to()), like
     * `io.timeout(t).to(rooms).emitWithAck(event, ...)`, and gathers the
     * clients' replies.
     *
     * Replies are decoded: JSON objects as associative arrays, integral
     * numbers within ±(2^53-1) as int, binary as Binary, exact MessagePack
     * replies with 64-bit int (above PHP_INT_MAX: a decimal string) and
     * DateTimeImmutable for timestamps.
     *
     * ```php
     * $r = $io->timeout(5)->to('user:42')->emitWithAck('notify', ['id' => 7]);
     * if (!$r->complete) { sendEmail(); }   // $r->acks, $r->sockets, ...
     * ```
     *
     * @param string $event the event name
     * @param mixed ...$args the arguments, by position, as in emit()
     * @return AckResult the acks that arrived before the timeout
     * @throws EmitgateException when the call fails (not on a timeout)
     */
    public function emitWithAck(string $event, mixed ...$args): AckResult
    {
        $request = new EmitWithAckRequest();
        if ($this->scope->rooms !== []) {
            $request->setEmit(Requests::emit($this->scope, $event, $args, 'emit.'));
        } else {
            $request->setBroadcast(Requests::broadcast($this->scope, $event, $args, 'broadcast.'));
        }
        $request->setTimeoutMs($this->waitMs());
        $r = $this->wait('EmitWithAck', $request, new EmitWithAckResponse());
        $acks = [];
        foreach ($r->getAcks() as $ack) {
            $acks[] = Replies::argument($ack);
        }
        return new AckResult($r->getSockets(), $acks, $r->getServers(), $r->getServersExpected(), $r->getComplete());
    }

    /**
     * Returns the selected sockets: those in the to() rooms (every socket of
     * the namespace without to()), minus the except() rooms, like
     * fetchSockets(). Their handshake never holds `auth`, `cookie` nor
     * `authorization`.
     *
     * @return FetchSocketsResult the sockets the servers reported
     * @throws EmitgateException when the call fails
     */
    public function fetchSockets(): FetchSocketsResult
    {
        $request = new FetchSocketsRequest();
        $request->setTarget($this->scope->target);
        $request->setNamespace($this->scope->namespace);
        $request->setRooms($this->scope->rooms);
        $request->setExceptRooms($this->scope->except);
        $request->setTimeoutMs($this->waitMs());
        $r = $this->wait('FetchSockets', $request, new FetchSocketsResponse());
        $sockets = [];
        foreach ($r->getSockets() as $s) {
            $raw = $s->getDataMsgpack();
            $data = $raw !== '' ? Replies::msgpack($raw) : Replies::value($s->getData());
            $h = $s->getHandshake();
            $maps = $h === null ? [] : (array) json_decode(
                Replies::quietly(static fn (): string => $h->serializeToJsonString()),
                true
            );
            $sockets[] = new RemoteSocket(
                $s->getId(),
                iterator_to_array($s->getRooms(), false),
                $data,
                $h === null ? new Handshake() : new Handshake(
                    self::strings($maps['headers'] ?? []),
                    $h->getTime(),
                    $h->getAddress(),
                    $h->getXdomain(),
                    $h->getSecure(),
                    (int) $h->getIssued(),
                    $h->getUrl(),
                    self::strings($maps['query'] ?? []),
                ),
            );
        }
        return new FetchSocketsResult(
            $sockets,
            $r->getServers(),
            $r->getServersExpected(),
            $r->getComplete(),
            $r->getTruncated()
        );
    }

    /**
     * Returns the rooms of the namespace over every server (to() and except()
     * do not apply).
     *
     * @return AllRoomsResult the rooms, sorted
     * @throws EmitgateException when the call fails
     */
    public function allRooms(): AllRoomsResult
    {
        $request = new AllRoomsRequest();
        $request->setTarget($this->scope->target);
        $request->setNamespace($this->scope->namespace);
        $request->setTimeoutMs($this->waitMs());
        $r = $this->wait('AllRooms', $request, new AllRoomsResponse());
        return new AllRoomsResult(
            iterator_to_array($r->getRooms(), false),
            $r->getServers(),
            $r->getServersExpected(),
            $r->getComplete(),
            $r->getTruncated()
        );
    }

    /**
     * Returns how many Socket.IO servers listen on the namespace, read from
     * Redis without a round-trip to the servers.
     *
     * @return int the number of servers
     * @throws EmitgateException when the call fails
     */
    public function serverCount(): int
    {
        $request = new ServerCountRequest();
        $request->setTarget($this->scope->target);
        $request->setNamespace($this->scope->namespace);
        $response = new ServerCountResponse();
        return Requests::call($this->transport, 'ServerCount', $request, $response, $this->timeout)->getServers();
    }

    /**
     * Sends an event to the servers' `io.of(namespace).on(event, ...)`
     * handlers with a callback, like serverSideEmitWithAck(), and gathers
     * their replies. A server whose handler never calls back is missing from
     * the replies and makes the result incomplete at the timeout. Arguments
     * must be JSON (no Binary); rooms do not apply.
     *
     * @param string $event the event name
     * @param mixed ...$args the arguments, by position
     * @return ServerAckResult the replies that arrived before the timeout
     * @throws EmitgateException when the call fails, or locally when to() was used
     */
    public function serverSideEmitWithAck(string $event, mixed ...$args): ServerAckResult
    {
        Requests::positional($args);
        Requests::noRooms($this->scope, '', 'serverSideEmitWithAck() reaches servers, not rooms');
        if ($this->scope->except !== []) {
            throw InvalidArgumentException::local('except_rooms', 'serverSideEmitWithAck() reaches servers, not rooms');
        }
        Texts::check($event, 'event');
        $request = new ServerSideEmitWithAckRequest();
        $request->setTarget($this->scope->target);
        $request->setNamespace($this->scope->namespace);
        $request->setEvent($event);
        $request->setArgs(ArgumentEncoder::encodeAll($args, 'args'));
        $request->setTimeoutMs($this->waitMs());
        $r = $this->wait('ServerSideEmitWithAck', $request, new ServerSideEmitWithAckResponse());
        $replies = [];
        foreach ($r->getReplies() as $reply) {
            $replies[] = new ServerReply(Replies::argument($reply->getReply()), $reply->getServer());
        }
        return new ServerAckResult($replies, $r->getServersExpected(), $r->getComplete());
    }

    /**
     * Keeps the string entries of a decoded JSON map.
     *
     * @return array<string, string>
     */
    private static function strings(mixed $map): array
    {
        $out = [];
        foreach (is_array($map) ? $map : [] as $k => $v) {
            if (is_string($v)) {
                $out[(string) $k] = $v;
            }
        }
        return $out;
    }

    /** The answer timeout of the request: the client's timeout, in whole ms. */
    private function waitMs(): int
    {
        return (int) min(FeedbackLimits::MAX_WAIT_MS, max(1, (int) round($this->timeout * 1000)));
    }

    /**
     * Sends a waiting call with a deadline past its answer timeout.
     *
     * @template T of \Google\Protobuf\Internal\Message
     * @param T $response
     * @return T
     */
    private function wait(string $method, \Google\Protobuf\Internal\Message $request, $response)
    {
        $deadline = $this->timeout + FeedbackLimits::DEADLINE_MARGIN;
        return Requests::call($this->transport, $method, $request, $response, $deadline);
    }
}
