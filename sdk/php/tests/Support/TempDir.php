<?php

declare(strict_types=1);

namespace Emitgate\Tests\Support;

/**
 * One temporary directory for the run's certificates and gateway config
 * files, removed with its files when PHP exits.
 */
final class TempDir
{
    private static ?string $dir = null;

    public static function get(): string
    {
        if (self::$dir !== null) {
            return self::$dir;
        }
        $dir = sys_get_temp_dir() . '/emitgate-php-' . bin2hex(random_bytes(6));
        if (!mkdir($dir, 0700)) {
            throw new \RuntimeException("cannot create $dir");
        }
        register_shutdown_function(static function () use ($dir): void {
            array_map('unlink', glob("$dir/*") ?: []);
            @rmdir($dir);
        });
        return self::$dir = $dir;
    }

    /**
     * Writes a file in the directory and returns its path.
     */
    public static function write(string $name, string $contents): string
    {
        $path = self::get() . '/' . $name;
        file_put_contents($path, $contents);
        return $path;
    }
}
