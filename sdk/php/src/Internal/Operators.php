<?php

declare(strict_types=1);

namespace Emitgate\Internal;

use Emitgate\Exception\InvalidArgumentException;

/**
 * The immutable operators of the JavaScript emitter: of, to/in, except,
 * volatile, compress, plus target. Each returns a new instance.
 *
 * @internal
 */
trait Operators
{
    /**
     * Returns the current scope.
     *
     * @return Scope the scope
     */
    abstract protected function scope(): Scope;

    /**
     * Returns a copy of this object with another scope.
     *
     * @param Scope $scope the new scope
     * @return static the copy
     */
    abstract protected function withScope(Scope $scope): static;

    /**
     * Selects a Socket.IO namespace (a missing leading "/" is added, "" is "/").
     * Rooms, excepted rooms and flags start afresh; the target and the
     * idempotency key are kept.
     *
     * @param string $namespace e.g. '/admin'
     * @return static a new instance for that namespace
     */
    public function of(string $namespace): static
    {
        Texts::check($namespace, 'namespace');
        if ($namespace === '' || $namespace[0] !== '/') {
            $namespace = '/' . $namespace;
        }
        $scope = $this->scope();
        return $this->withScope(
            new Scope(target: $scope->target, namespace: $namespace, idempotencyKey: $scope->idempotencyKey)
        );
    }

    /**
     * Adds rooms to reach (a socket id is a room too). Calls add up:
     * `to('a')->to(['b', 'c'])` reaches a, b and c.
     *
     * @param string|list<string> ...$rooms room names, or lists of them
     * @return static a new instance with the rooms added
     */
    public function to(string|array ...$rooms): static
    {
        $scope = $this->scope();
        return $this->withScope($scope->with(['rooms' => Texts::rooms($scope->rooms, $rooms, 'rooms')]));
    }

    /**
     * Same as to().
     *
     * @param string|list<string> ...$rooms room names, or lists of them
     * @return static a new instance with the rooms added
     */
    public function in(string|array ...$rooms): static
    {
        return $this->to(...$rooms);
    }

    /**
     * Skips the sockets in any of these rooms. Calls add up.
     *
     * @param string|list<string> ...$rooms room names, or lists of them
     * @return static a new instance with the rooms excepted
     */
    public function except(string|array ...$rooms): static
    {
        $scope = $this->scope();
        return $this->withScope($scope->with(['except' => Texts::rooms($scope->except, $rooms, 'except_rooms')]));
    }

    /**
     * Sets the volatile flag: the event may be dropped for clients that are
     * not ready to receive it.
     *
     * @return static a new instance with the flag set
     */
    public function volatile(): static
    {
        return $this->withScope($this->scope()->with(['volatile' => true]));
    }

    /**
     * Asks the servers to compress (or not) the packet on client connections.
     *
     * @param bool $compress true to compress, false not to
     * @return static a new instance with the flag set
     */
    public function compress(bool $compress = true): static
    {
        return $this->withScope($this->scope()->with(['compress' => $compress]));
    }

    /**
     * Selects a target: a Socket.IO cluster configured in the gateway by
     * name. The default target is used until this is called.
     *
     * @param string $target the target name; '' selects the default target
     * @return static a new instance for that target
     */
    public function target(string $target): static
    {
        Texts::check($target, 'target');
        return $this->withScope($this->scope()->with(['target' => $target]));
    }

    /**
     * Sets the idempotency key of the calls made through the returned
     * instance: the gateway publishes at most once per key within its window
     * (`idempotency_window_ms`), and answers a repeat with the first call's
     * result and `duplicate` true. A keyed instance keys every call made with
     * it, so derive one per operation.
     *
     * @param string $key the key (UTF-8 text); '' for none
     * @return static a new instance with the key
     * @throws InvalidArgumentException locally when the key is not UTF-8 text
     */
    public function idempotencyKey(string $key): static
    {
        Texts::check($key, 'idempotency_key');
        return $this->withScope($this->scope()->with(['idempotencyKey' => $key]));
    }
}
