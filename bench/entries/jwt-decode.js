// jwt-decode: an SPA that only reads claims imports the decoder.
import { jwtDecode } from "jwt-decode";
export { jwtDecode };
