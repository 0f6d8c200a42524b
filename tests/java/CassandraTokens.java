import java.io.BufferedReader;
import java.io.BufferedWriter;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.HexFormat;

import org.apache.cassandra.dht.Murmur3Partitioner;

/**
 * Cassandra's Murmur3Partitioner.getToken of each key, one per line:
 *   CassandraTokens bigint|int   decimal keys, serialised as CQL bigint (8 bytes) or int (4)
 *   CassandraTokens text         keys as the hex of their UTF-8 bytes (any text fits a line)
 */
public final class CassandraTokens {
    public static void main(String[] args) throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        BufferedWriter out = new BufferedWriter(new OutputStreamWriter(System.out, StandardCharsets.UTF_8));
        String line;
        while ((line = in.readLine()) != null) {
            ByteBuffer key;
            if (args[0].equals("bigint")) {
                key = ByteBuffer.allocate(8).putLong(0, Long.parseLong(line));
            } else if (args[0].equals("int")) {
                key = ByteBuffer.allocate(4).putInt(0, Integer.parseInt(line));
            } else {
                key = ByteBuffer.wrap(HexFormat.of().parseHex(line));
            }
            out.write(Murmur3Partitioner.instance.getToken(key).getTokenValue().toString());
            out.write('\n');
        }
        out.flush();
    }
}
