import java.io.BufferedReader;
import java.io.BufferedWriter;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.nio.charset.StandardCharsets;
import java.util.HexFormat;

/**
 * hashCode() of each key as the JVM computes it, one per line:
 *   JavaHashCode int|long   decimal keys boxed as Integer or Long
 *   JavaHashCode string     keys as the hex of their UTF-8 bytes, as a String
 */
public final class JavaHashCode {
    public static void main(String[] args) throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        BufferedWriter out = new BufferedWriter(new OutputStreamWriter(System.out, StandardCharsets.UTF_8));
        String line;
        while ((line = in.readLine()) != null) {
            Object key;
            if (args[0].equals("int")) {
                key = Integer.valueOf(Integer.parseInt(line));
            } else if (args[0].equals("long")) {
                key = Long.valueOf(Long.parseLong(line));
            } else {
                key = new String(HexFormat.of().parseHex(line), StandardCharsets.UTF_8);
            }
            out.write(Integer.toString(key.hashCode()));
            out.write('\n');
        }
        out.flush();
    }
}
